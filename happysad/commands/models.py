"""`happysad models`: list, inspect and promote model versions, and their promotion history."""

from typing import Annotated

import typer

from happysad import output
from happysad.output import JsonListOption, JsonOption

models_app = typer.Typer(help="List, inspect and promote model versions.", no_args_is_help=True)


@models_app.command("list")
def models_list(json_output: JsonListOption = False) -> None:
    """Every model version, oldest first."""
    from db import queries
    from db.session import session_scope
    from happysad.records import model_version_record

    with session_scope() as session:
        rows = [model_version_record(r) for r in queries.list_model_versions(session)]
    if json_output:
        output.print_json(rows)
        return
    output.print_table("model versions (* production)",
                       ["version", "created", "architecture", "size", "accuracy", "precision",
                        "recall", "class"],
                       [[f"{r['version']}{' *' if r['production'] else ''}", r["created_at"]
                         .strftime("%Y-%m-%d %H:%M"), r["architecture"], r["image_size"],
                         f"{r['metrics']['accuracy']:.3f}", f"{r['metrics']['precision']:.3f}",
                         f"{r['metrics']['recall']:.3f}", _headline_class(r["class_names"])]
                        for r in rows])


def _headline_class(class_names: list[str]) -> str:
    """Which class the headline precision and recall are for (trainer.evaluate)."""
    return class_names[1] if len(class_names) == 2 else "macro average"


@models_app.command("show")
def models_show(version: Annotated[str, typer.Argument(help="A version number or 'production'.")],
                json_output: JsonOption = False) -> None:
    """One model version in full."""
    from db import queries
    from db.session import session_scope
    from happysad.records import model_version_record

    with session_scope() as session:
        if version == "production":
            row = queries.production_model_version(session)
            if row is None:
                output.fail("no production model yet: train one first (`happysad train FOLDER`)")
        else:
            row = queries.get_model_version(session, _version_number(version))
        record = model_version_record(row)
    if json_output:
        output.print_json(record)
        return
    from rich.text import Text

    metrics = record["metrics"]
    lines = [(key, output.plain(value)) for key, value in record.items() if key != "metrics"]
    lines.append(("metrics", f"accuracy {metrics['accuracy']:.3f}, "
                             f"{output.headline_scores(metrics, record['class_names'])}"))
    lines.append(("confusion matrix", "; ".join(
        f"true {name}: " + " ".join(str(count) for count in counts)
        for name, counts in zip(record["class_names"], metrics["confusion_matrix"]))))
    for key, value in lines:  # values as text: a path is never read as markup
        output.console.print(Text.assemble((key, "bold"), ": ", value), highlight=False)


def _version_number(text: str) -> int:
    try:
        return int(text.lstrip("v"))
    except ValueError:
        output.fail(f"not a model version: {text!r} (a number such as 3, or 'production')")


@models_app.command("promote")
def models_promote(version: Annotated[str, typer.Argument(help="The version to make production.")],
                   reason: Annotated[str, typer.Option(help="Recorded in the history.")] = "manual promotion") -> None:
    """Make a version production: the manual override, and the rollback."""
    from db.session import session_scope
    from happysad.promotions import promote

    number = _version_number(version)
    with session_scope() as session:
        previous = promote(session, number, reason)["previous_version"]
    was = f"was v{previous}" if previous is not None else "there was none"
    output.console.print(f"model v{number} is production ({was})")


@models_app.command("history")
def models_history(json_output: JsonListOption = False) -> None:
    """Every promotion and rollback, with time and reason."""
    from db import queries
    from db.session import session_scope
    from happysad.records import promotion_record

    with session_scope() as session:
        rows = [promotion_record(p) for p in queries.promotion_history(session)]
    if json_output:
        output.print_json(rows)
        return
    output.print_table("promotions", ["at", "version", "previous", "kind", "reason"],
                       [[r["at"].strftime("%Y-%m-%d %H:%M:%S"), r["version"],
                         r["previous_version"], r["kind"], r["reason"]] for r in rows])
