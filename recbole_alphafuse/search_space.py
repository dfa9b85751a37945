"""Search spaces: RecBole's search-space files, their grid, and hyperopt's TPE one trial at a time.

A file holds one line a parameter, as RecBole's HyperTuning reads it: ``name choice [..]``,
``name uniform low,high``, ``name quniform low,high,q`` or ``name loguniform low,high`` (the log
of the value is uniform on [low, high]). The benchmark and the Ray tuner read it here.
"""

import ast
import itertools
import json
import math

from recbole_alphafuse import AlphaFuseError

KINDS = ("choice", "uniform", "quniform", "loguniform")


def read_search_space(params_file):
    """``{name: (kind, arguments)}`` from a RecBole search-space file, checked line by line."""
    space = {}
    with open(params_file, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 3:
                raise _space_error(params_file, number, "needs: name kind values")
            name, kind, text = parts[0], parts[1], "".join(parts[2:])
            if kind not in KINDS:
                raise _space_error(
                    params_file,
                    number,
                    f"has the unknown kind '{kind}' (choice, uniform, quniform or loguniform)",
                )
            try:
                if kind == "choice":
                    values = ast.literal_eval(text)
                    if not isinstance(values, list) or not values:
                        raise ValueError
                else:
                    values = [float(v) for v in text.split(",")]
                    if len(values) != (3 if kind == "quniform" else 2):
                        raise ValueError
            except (ValueError, SyntaxError):
                raise _space_error(
                    params_file, number, f"has values '{text}' that do not fit kind '{kind}'"
                ) from None
            space[name] = (kind, values)
    if not space:
        raise AlphaFuseError(f"{params_file} defines no parameter to search.")
    return space


def _space_error(params_file, number, problem):
    return AlphaFuseError(
        f"{params_file}, line {number} {problem}; e.g. `learning_rate choice [0.001,0.003]`."
    )


def contains(space, setting):
    """Whether ``setting`` (a value for every parameter) is a point of ``space``."""
    for name, (kind, values) in space.items():
        value = setting[name]
        if kind == "choice":
            inside = value in values
        elif kind == "loguniform":
            inside = math.exp(values[0]) <= value <= math.exp(values[1])
        else:
            inside = values[0] <= value <= values[1]
        if not inside:
            return False
    return True


def grid(space):
    """Every combination of a space of ``choice`` parameters, in file order; None when a
    parameter is continuous."""
    if any(kind != "choice" for kind, _ in space.values()):
        return None
    names = list(space)
    return [dict(zip(names, values)) for values in itertools.product(*(space[n][1] for n in names))]


def _hyperopt_expression(space):
    from hyperopt import hp

    draws = {
        "choice": lambda name, v: hp.choice(name, v),
        "uniform": lambda name, v: hp.uniform(name, *v),
        "quniform": lambda name, v: hp.quniform(name, *v),
        "loguniform": lambda name, v: hp.loguniform(name, *v),
    }
    return {name: draws[kind](name, values) for name, (kind, values) in space.items()}


def suggest_tpe(space, finished, trial_number, n_startup):
    """The next setting hyperopt's TPE proposes after ``finished``, a list of (setting, loss)
    with loss to minimise (None for a failed trial, which counts as the worst). The first
    ``n_startup`` settings are random draws; ``trial_number`` seeds the draw, so that a resumed
    search proposes what the uninterrupted one would have."""
    from hyperopt import JOB_STATE_DONE, STATUS_FAIL, STATUS_OK, Domain, Trials, space_eval, tpe

    expression = _hyperopt_expression(space)
    domain = Domain(lambda setting: 0.0, expression)
    trials = Trials()
    for tid, (setting, loss) in enumerate(finished):
        vals = {
            name: [values.index(setting[name]) if kind == "choice" else setting[name]]
            for name, (kind, values) in space.items()
        }
        misc = {"tid": tid, "cmd": domain.cmd, "workdir": None, "idxs": {n: [tid] for n in space}}
        result = (
            {"status": STATUS_OK, "loss": loss} if loss is not None else {"status": STATUS_FAIL}
        )
        (doc,) = trials.new_trial_docs([tid], [None], [result], [{**misc, "vals": vals}])
        doc["state"] = JOB_STATE_DONE
        trials.insert_trial_docs([doc])
    trials.refresh()
    (proposal,) = tpe.suggest(
        [len(finished)], domain, trials, seed=trial_number, n_startup_jobs=n_startup
    )
    vals = {name: values[0] for name, values in proposal["misc"]["vals"].items()}
    return {name: _plain(value) for name, value in space_eval(expression, vals).items()}


def _plain(value):
    """numpy scalars as Python ones, so that a setting prints and reads back as JSON."""
    return value.item() if hasattr(value, "item") else value


def setting_text(setting):
    """A setting as the one-line JSON the benchmark's CSV keeps."""
    return json.dumps(setting, sort_keys=True)


def read_setting(text):
    """The setting of :func:`setting_text` (JSON: YAML would read ``1e-06`` as a string)."""
    return json.loads(text)
