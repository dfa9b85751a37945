"""Where the benchmark's trainings run: processes of this machine, or Ray tasks."""

import multiprocessing
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import torch

TOOLS = ("Hyperopt", "Ray")  # where the trainings run: processes of this machine, or Ray tasks


def limit_threads(threads):
    torch.set_num_threads(threads)


def _stop(number, frame):
    sys.exit(f"stopped by signal {number}")


@contextmanager
def worker_pool(jobs, threads, tool="Hyperopt", ray_address=None, gpus_per_trial=0):
    """Where the trainings run: ``jobs`` processes of ``threads`` threads each, or with
    ``tool="Ray"`` Ray tasks of ``threads`` CPUs and ``gpus_per_trial`` GPUs each. Either has
    ``submit(function, *args)`` -> a Future. An interruption (Ctrl-C, a SIGTERM) stops the
    trainings in flight too, not only this process; what finished is kept by the caller for a
    rerun."""
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        if tool == "Ray":
            import ray

            ray.init(address=ray_address, ignore_reinit_error=True, include_dashboard=False)
            try:
                yield RayPool(threads, gpus_per_trial)
            finally:
                ray.shutdown()  # its tasks in flight end with it
        else:
            with ProcessPoolExecutor(
                jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=limit_threads,
                initargs=(threads,),
            ) as pool:
                try:
                    yield pool
                except BaseException:
                    for child in multiprocessing.active_children():
                        child.terminate()
                    raise
    finally:
        signal.signal(signal.SIGTERM, previous)


class RayPool:
    """``submit`` as a process pool's, each call a Ray task of ``threads`` CPUs and ``gpus``
    GPUs."""

    def __init__(self, threads, gpus):
        import ray

        self.threads = threads
        self.task = ray.remote(num_cpus=threads, num_gpus=gpus)(_in_ray_task)

    def submit(self, function, *args):
        return self.task.remote(self.threads, function, *args).future()


def _in_ray_task(threads, function, *args):
    """``function(*args)`` in a Ray worker, on ``threads`` threads and the GPUs Ray gave the
    task: RecBole sets CUDA_VISIBLE_DEVICES from ``gpu_id``, so that must name them."""
    import ray

    limit_threads(threads)
    sys.argv = sys.argv[:1]  # RecBole's Config reads sys.argv: the worker's are not settings
    return function(*args, fixed={"gpu_id": ",".join(map(str, ray.get_gpu_ids()))})
