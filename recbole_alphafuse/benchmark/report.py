"""The benchmark's table: test metrics over seeds, paired differences over users, the plot; and
the header lines that say where and how a table was measured."""

import platform
import statistics

import torch

from recbole_alphafuse.config import Config
from recbole_alphafuse.evaluation import holm_family, paired_test
from recbole_alphafuse.search_space import setting_text


def machine():
    """The hardware a table was measured on, for its header."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    return f"CPU {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def protocol(dataset, config_files):
    config = Config(model="SASRec", dataset=dataset, config_file_list=config_files)
    return "cold-start users" if config["benchmark_filename"] else "warm, leave-one-out"


def mean_and_spread(runs, metric):
    """(mean, standard deviation, n) of ``metric`` over ``runs``; None without a value."""
    values = [float(r[metric]) for r in runs if r.get(metric) not in (None, "")]
    if not values:
        return None
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), spread, len(values)


def plot_bars(datasets, labels, series, metric, path):
    """One panel per dataset, a horizontal bar per label and series: ``series`` maps a series
    name to {(dataset, label): (mean, spread, n)}. Skipped, with a note, without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print(f"{path} not drawn: `pip install matplotlib` for the plot.")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(
        1,
        len(datasets),
        figsize=(4.5 * len(datasets) + 3, 0.35 * len(labels) * len(series) + 1.2),
        sharey=True,
        squeeze=False,
    )
    height = 0.8 / len(series)
    for panel, dataset in zip(panels[0], datasets):
        for offset, (name, values) in enumerate(series.items()):
            bars = [values.get((dataset, label)) or (0, 0, 0) for label in labels]
            panel.barh(
                [i + offset * height for i in range(len(labels))],
                [b[0] for b in bars],
                height=height,
                xerr=[b[1] for b in bars],
                capsize=2,
                label=name if len(series) > 1 else None,
            )
        panel.set_title(dataset)
        panel.set_xlabel(metric)
    panels[0][0].set_yticks(
        [i + (len(series) - 1) * height / 2 for i in range(len(labels))], labels, fontsize="small"
    )
    panels[0][0].invert_yaxis()
    if len(series) > 1:
        panels[0][-1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def summaries(studies, stage, metric):
    """{(dataset, model): (mean, spread, n)} of ``metric`` over each study's ``stage`` runs."""
    return {
        key: mean_and_spread(list(study.runs(stage).values()), metric)
        for key, study in studies.items()
    }


def paired_tests(studies, dataset, models, reference, metric):
    """The table's comparisons on ``dataset``, each a paired test over the test users
    (:func:`~recbole_alphafuse.evaluation.paired_test`), with Holm's correction of their
    permutation p-values over the whole family: {(model, comparison): (test, Holm p,
    significant)}. The comparisons: ``versus`` (tuned against the reference tuned), ``defaults``
    (defaults against the reference's defaults) and ``gain`` (tuned against the defaults)."""
    anchor = studies[dataset, reference]
    pairs = {}
    for model in models:
        study = studies[dataset, model]
        tuned, defaults = study.ranks_of("tuned"), study.ranks_of("default")
        if model != reference:
            pairs[model, "versus"] = (tuned, anchor.ranks_of("tuned"))
            pairs[model, "defaults"] = (defaults, anchor.ranks_of("default"))
        if not study.tuned_are_defaults():
            pairs[model, "gain"] = (tuned, defaults)
    return holm_family(
        {
            key: paired_test(runs, reference_runs, metric)
            for key, (runs, reference_runs) in pairs.items()
            if runs and reference_runs
        }
    )


def paired_cell(comparison):
    """' (Δ mean ± standard error, p ...)' of one comparison of :func:`paired_tests`, marked
    with * where it is significant after Holm's correction; '' without ranks."""
    if comparison is None:
        return ""
    test, holm_pvalue, significant = comparison
    return (
        f" (Δ {test.mean:+.4f} ± {test.stderr:.4f}, p {test.t_pvalue:.3g} t / "
        f"{test.permutation_pvalue:.3g} perm, Holm {holm_pvalue:.3g}{' *' if significant else ''})"
    )


def report(studies, datasets, models, seeds, metrics, reference, protocols, command, config_files):
    """The markdown table: tuned test metrics over seeds, relative to ``reference``, with the
    trials, the chosen setting and (where run) the defaults and the gain from tuning."""
    first = metrics[0]
    finalists = next(iter(studies.values())).n_finalists
    margin = next(iter(studies.values())).margin
    tuned, default = summaries(studies, "tuned", first), summaries(studies, "default", first)
    lines = [
        f"Command: `{command}`" if command else "",
        f"Machine: {machine()}.",
        f"Config files: {', '.join(config_files) if config_files else 'none (the defaults)'}.",
        (
            f"Each model: its trials at seed {seeds[0]}; "
            + (
                f"its best {finalists} trials (finalists) trained again at the other seeds; the "
                "setting with the best mean validation score chosen"
                if finalists > 1
                else "the setting with the best validation score chosen"
            )
            + f" (no trial or finalist is tested); then the chosen setting trained and tested at "
            f"seeds {', '.join(map(str, seeds))}: test metrics at the best validation epoch, mean "
            "± standard deviation over seeds."
        ),
        (
            f"Δ: the difference in {first} user by user on the same test users (each user's "
            f"value averaged over the seeds), ± its standard error over users: tuned against "
            f"{reference} tuned, defaults against {reference}'s defaults, and tuned against the "
            "model's defaults. p: two-sided p-values of no difference, scipy's paired t-test "
            "(t) and paired permutation test (perm, 1,999 random swaps of each user's two "
            "values); Holm: the permutation p-value after Holm's correction over the "
            "comparisons of the dataset's table; * marks a difference significant at 0.05 after "
            "that correction. valid Δ: the chosen setting against the defaults on validation, "
            "user by user at the seeds it ran; "
            + (
                f"it replaces the defaults only beyond {margin:g} standard errors."
                if margin is not None
                else "no margin: the chosen setting replaces the defaults."
            )
        ),
    ]
    for dataset in datasets:
        lines += [
            "",
            f"### {dataset} ({protocols[dataset]})",
            "",
            "| model | trials | chosen trial's valid | valid over seeds, tuned / defaults | "
            + " | ".join(metrics)
            + f" | vs {reference} | defaults {first} | gain from tuning | chosen setting |",
            "|---|---|---|---|" + "---|" * (len(metrics) + 4),
        ]
        anchor = tuned.get((dataset, reference))
        comparisons = paired_tests(studies, dataset, models, reference, first)
        for model in models:
            study = studies[dataset, model]
            number, setting = study.chosen()
            runs = list(study.runs("tuned").values())
            cells = []
            for metric in metrics:
                value = mean_and_spread(runs, metric)
                cells.append(f"{value[0]:.4f} ± {value[1]:.4f} ({value[2]})" if value else "-")
            mine, base = tuned.get((dataset, model)), default.get((dataset, model))
            versus = f"{mine[0] / anchor[0] - 1:+.1%}" if mine and anchor and anchor[0] else "-"
            versus += paired_cell(comparisons.get((model, "versus")))
            versus = "" if model == reference else versus
            kept = study.keeps_defaults()
            if kept:
                gain = "none: the defaults kept, the chosen setting within the margin"
            elif study.tuned_are_defaults():
                gain = "none: the defaults were chosen"
            else:
                gain = f"{mine[0] / base[0] - 1:+.1%}" if mine and base and base[0] else "-"
                gain += paired_cell(comparisons.get((model, "gain")))
            validation = study.validation_gain()
            if validation is not None and not (study.tuned_are_defaults() and not kept):
                gain += f"; valid Δ {validation[0]:+.4f} ± {validation[1]:.4f}"
            base_cell = f"{base[0]:.4f} ± {base[1]:.4f}" if base else "-"
            if base and model != reference:
                base_cell += paired_cell(comparisons.get((model, "defaults")))
            best = study.finished[number]["best_valid_score"] if number is not None else "-"
            # The search saw one seed: the other seeds' validation shows whether its pick holds.
            valid = [
                mean_and_spread(list(study.runs(stage).values()), "best_valid_score")
                for stage in ("tuned", "default")
            ]
            valid = " / ".join(f"{v[0]:.4f}" if v else "-" for v in valid)
            count = min(study.n_finalists, study.trials)
            finalists_run = f" + {count} finalists" if count > 1 else ""
            lines.append(
                f"| {model} | {len(study.finished)}/{study.trials} {study.search}{finalists_run} "
                f"| {best} | "
                f"{valid} | "
                + " | ".join(cells)
                + f" | {versus} | {base_cell} | {gain} | "
                + f"{'`' + setting_text(setting) + '`' if setting is not None else '-'} |"
            )
    return lines
