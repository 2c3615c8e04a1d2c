"""Per-job report: label counts, probability histogram, contact sheets, and a report.html.

Written under HAPPYSAD_HOME/jobs/JOB/ (or HAPPYSAD_REPORT_STORE, which may be a bucket).
Figures are pure matplotlib (Agg), built from the job's rows in SQL.
"""

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from db import queries
from db.session import Sessions
from db.settings import Settings
from db.tables import Prediction
from trainer.images import ImageError, decode_pixels
from trainer.plots import figure_png
from trainer.storage import StorageError, open_storage

CONTACT_SHEET_IMAGES = 6
THUMBNAIL_SIZE = 96


def label_count_plot(counts: dict[str, int], failed: int) -> Figure:
    figure = Figure(figsize=(6, 3.5))
    axes = figure.add_subplot(1, 1, 1)
    names = list(counts) + (["(error)"] if failed else [])
    values = list(counts.values()) + ([failed] if failed else [])
    bars = axes.bar(names, values, color=["teal", "orange", "slateblue", "olive"][:len(counts)]
                    + (["grey"] if failed else []))
    axes.bar_label(bars)
    axes.set_ylabel("images")
    axes.set_title("Labels")
    return figure


def probability_histogram(values: np.ndarray, class_names: list[str]) -> Figure:
    """Binary: P(second class) with the 0.5 threshold. More classes: the winning probability."""
    figure = Figure(figsize=(6, 3.5))
    axes = figure.add_subplot(1, 1, 1)
    axes.hist(values, bins=20, range=(0, 1), color="teal")
    if len(class_names) == 2:
        axes.axvline(0.5, color="red", linestyle="--", label="decision threshold 0.5")
        axes.set_xlabel(f"probability of {class_names[1]!r}")
    else:
        axes.axvline(1 / len(class_names), color="red", linestyle="--", label="chance")
        axes.set_xlabel("probability of the predicted class")
    axes.set_ylabel("images")
    axes.legend(loc="upper center")
    axes.set_title("Probabilities")
    return figure


def contact_sheet(storage, rows_by_class: dict[str, dict[str, list[Prediction]]]) -> Figure:
    """For each class: its most confident and its most uncertain images, with probabilities."""
    lines = [(name, kind, rows) for name, kinds in rows_by_class.items()
             for kind, rows in kinds.items()]
    columns = CONTACT_SHEET_IMAGES
    figure = Figure(figsize=(1.8 * columns, 2.1 * max(1, len(lines))))
    for line_index, (name, kind, rows) in enumerate(lines):
        for column, row in enumerate(rows[:columns]):
            axes = figure.add_subplot(max(1, len(lines)), columns, line_index * columns + column + 1)
            try:
                axes.imshow(decode_pixels(storage.read_stored(row.uri), THUMBNAIL_SIZE))
            except (ImageError, StorageError):
                axes.text(0.5, 0.5, "unavailable", ha="center")
            axes.set_title(f"{row.confidence:.2f}", fontsize=8)
            axes.axis("off")
            if column == 0:
                axes.text(-0.1, 0.5, f"{name}\n{kind}", transform=axes.transAxes, ha="right",
                          va="center", fontsize=9)
    return figure


def build_report(job_id: int, *, settings: Settings, sessions: Sessions) -> str:
    """Write the job's plots and report.html to the report store of `settings`; returns where
    report.html is. The rows are read in one transaction, closed before anything is drawn."""
    with sessions() as session:
        job = queries.get_job(session, job_id)
        version = queries.get_model_version(session, job.model_version)
        counts, totals = queries.label_counts(session, job_id), queries.job_counts(session, job_id)
        class_names = list(version.class_names)
        probabilities = queries.classified_probabilities(session, job_id)
        extremes = {name: queries.confidence_extremes(session, job_id, name,
                                                      CONTACT_SHEET_IMAGES)
                    for name in class_names}
        job_source, model_version = job.source, job.model_version
        submitted, finished = job.submitted_at, job.finished_at
    if len(class_names) == 2:
        values = np.array([p[class_names[1]] for p in probabilities])
    else:
        values = np.array([max(p.values()) for p in probabilities])
    extremes = {name: kinds for name, kinds in extremes.items() if kinds["most confident"]}

    store = open_storage(settings.effective_report_store)
    folder = f"{job_id}"
    plots = {"labels.png": label_count_plot({n: counts.get(n, 0) for n in class_names},
                                            totals["failed"]),
             "probabilities.png": probability_histogram(values, class_names),
             "contact_sheet.png": contact_sheet(open_storage(job_source), extremes)}
    for name, figure in plots.items():
        store.write_bytes(f"{folder}/{name}", figure_png(figure))
    summary = [("job", job_id), ("source", job_source), ("model version", model_version),
               ("submitted", submitted), ("finished", finished),
               ("classified", totals["classified"]), ("failed", totals["failed"])]
    summary += [(f"label {name}", counts.get(name, 0)) for name in class_names]
    page = report_page(job_id, summary,
                       [(name, name.split(".")[0].replace("_", " ")) for name in plots])
    return store.write_bytes(f"{folder}/report.html", page.encode())


def report_page(job_id: int, summary: list[tuple], plots: list[tuple[str, str]]) -> str:
    """report.html from templates/report.html; autoescaped, so a source path or a class name
    can never become markup in the page."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return environment.get_template("report.html").render(job_id=job_id, summary=summary,
                                                          plots=plots)
