"""The `nnmon` command line.

Every option can also come from an environment variable (shown in --help),
which is how compose.yaml and `nnmon up` configure the processors.
"""

# No `from __future__ import annotations` here: typer reads the annotations of
# the signatures that `pipeline_command` builds, and needs them as objects.

import asyncio
import contextlib
import functools
import inspect
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from nnmon.processors.run.config import PipelineConfig
from nnmon.processors.run.runtime import LogFormat, UsageError, run_until_stopped, setup_logging
from nnmon.processors.shell.joined import JoinLimits
from nnmon.streams.client.connection import EXPLAINED_ERRORS, explain
from nnmon.streams.settings import BrokerSettings, Retention, StreamNames

app = typer.Typer(
    help="Real-time monitor of a model's predictions on RabbitMQ Streams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
log = logging.getLogger("nnmon")


# The default of the file options: "no file" (typer needs a value of the
# option's own type, so not None).
NO_FILE = Path()


def _option(default: Any, flag: str, env: str, help: str, **extra: Any) -> inspect.Parameter:
    name = flag.lstrip("-").replace("-", "_")
    # Built at run time, which is when typer reads it; mypy cannot follow.
    annotation = Annotated[type(default), typer.Option(flag, envvar=env, help=help, **extra)]  # type: ignore[valid-type]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _broker_port(flag: str) -> inspect.Parameter:
    return _option(5552, flag, "NNMON_PORT", "RabbitMQ stream port.", min=1, max=65535)


COMMON_OPTIONS = (
    _option("127.0.0.1", "--host", "NNMON_HOST", "RabbitMQ host."),
    _broker_port("--port"),
    _option("guest", "--user", "NNMON_USER", "RabbitMQ user."),
    _option("guest", "--password", "NNMON_PASSWORD", "RabbitMQ password.", show_default=False),
    _option(NO_FILE, "--password-file", "NNMON_PASSWORD_FILE",
            "Read the password from this file's first line instead (e.g. a Docker secret).",
            show_default=False),
    _option("/", "--vhost", "NNMON_VHOST", "RabbitMQ virtual host."),
    _option(False, "--tls", "NNMON_TLS", "Connect with TLS (the broker's TLS stream port, e.g. 5551)."),
    _option(NO_FILE, "--tls-ca-file", "NNMON_TLS_CA_FILE",
            "CA certificate(s) to trust for TLS, PEM; implies --tls. Default: the system's.",
            show_default=False),
    _option(False, "--load-balancer", "NNMON_LOAD_BALANCER",
            "Keep to --host where the broker advertises another name: a compose broker reached "
            "through its published port, or a load balancer before one node."),
    _option(30.0, "--dead-after", "NNMON_DEAD_AFTER",
            "Seconds a connection may hear nothing from the broker (not even a heartbeat) before it "
            "is taken for dead and made again.", min=3.0),
    _option("", "--stream-prefix", "NNMON_STREAM_PREFIX",
            "Prefix of every stream and consumer name, so pipelines can share a broker."),
    _option(Path("logs"), "--logs-dir", "NNMON_LOGS_DIR", "Where the CSV and PNG go."),
    _option("7D", "--max-age", "NNMON_MAX_AGE", "Stream retention by age (RabbitMQ units: 7D, 12h)."),
    _option(1_000_000_000, "--max-bytes", "NNMON_MAX_BYTES", "Stream retention by size.", min=1),
    _option(50_000_000, "--segment-bytes", "NNMON_SEGMENT_BYTES",
            "Stream segment size; retention removes whole segments.", min=1),
    _option(False, "--debug", "NNMON_DEBUG", "Debug logging, and tracebacks on errors."),
    _option(LogFormat.TEXT, "--log-format", "NNMON_LOG_FORMAT",
            "Log lines for people (text) or one JSON object per line (json)."),
)
JOIN_OPTIONS = (
    _option(3600.0, "--join-window", "NNMON_JOIN_WINDOW",
            "Seconds (stream time) an id waits for its other half before it expires.", min=0.001),
    _option(100_000, "--max-pending", "NNMON_MAX_PENDING",
            "Most ids waiting for their other half, per side.", min=1),
)

QUALITY_OPTIONS = (
    _option(60.0, "--window", "NNMON_WINDOW",
            "Seconds of prediction time per quality window (tumbling, aligned to the epoch)."),
    _option(30.0, "--allowed-lateness", "NNMON_ALLOWED_LATENESS",
            "Seconds a window stays open past its end for rows that come late."),
    _option(NO_FILE, "--rules", "NNMON_RULES",
            "Alert rules (TOML, [[rule]] tables); default: the built-in rules.", show_default=False),
    _option(NO_FILE, "--reference-file", "NNMON_REFERENCE_FILE",
            "Reference quality from a file of y_true,y_pred (CSV or Parquet); "
            "default: the built-in model on the data set it was fitted on.", show_default=False),
    _option("", "--reference-from", "NNMON_REFERENCE_FROM",
            "Reference quality from the history of y_true from here (as replay's --from-offset).",
            show_default=False),
    _option(-1, "--reference-to", "NNMON_REFERENCE_TO",
            "Last y_true offset of the reference range (default: the stream's end).", show_default=False),
    _option("linear", "--model", "NNMON_MODEL",
            "The built-in model (linear or mlp) whose quality and predictions on the data set are the "
            "default references; the one `nnmon model` and `nnmon up` run."),
)


def _data_file(data: Path | None, target: str | None, id_column: str | None = None,
               cycle: bool = False, covariate_drift_after: int | None = None) -> Any:
    """The data file of --data (checked whole), or None for the diabetes set."""
    if data is None:
        for name, given in (("--target", target), ("--id-column", id_column), ("--cycle", cycle or None)):
            if given is not None:
                raise UsageError(f"{name} needs --data")
        return None
    if target is None:
        raise UsageError("--data needs --target COLUMN: the column of the truths")
    if cycle and id_column is not None:
        raise UsageError("--cycle with --id-column would send each id again: every repeat is refused")
    if covariate_drift_after is not None:
        raise UsageError("--covariate-drift-after shifts the diabetes set's bmi and s5: not with --data")
    from nnmon.processors.shell.data_file import load_data

    return load_data(data, target, id_column)


DataOption = Annotated[Path | None, typer.Option(
    envvar="NNMON_DATA", help="Your own data instead of the diabetes set: a CSV or Parquet file, a row per "
                              "event (features: every column of numbers but the target and id).")]
TargetOption = Annotated[str | None, typer.Option(envvar="NNMON_TARGET",
                                                  help="With --data: the column of the truths (y_true).")]
IdColumnOption = Annotated[str | None, typer.Option(
    envvar="NNMON_ID_COLUMN", help="With --data: the column of the events' ids (default: new UUIDv7 ids).")]
CycleOption = Annotated[bool, typer.Option(
    envvar="NNMON_CYCLE", help="With --data: start over at the file's end (default: once through).")]


def _quality_options(common: dict[str, Any]) -> Any:
    from nnmon.processors.shell.quality_setup import QualityOptions

    def file(path: Path) -> Path | None:
        return None if path == NO_FILE else path

    return QualityOptions(common["window"], common["allowed_lateness"], file(common["rules"]),
                          file(common["reference_file"]), common["reference_from"] or None,
                          None if common["reference_to"] < 0 else common["reference_to"], common["model"])


def pipeline_command(*extra: inspect.Parameter) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command the common options (plus `extra`); it receives them as
    `config` (and `limits`, and any `extra` it names), runs with clean errors,
    and exits with its status."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        parameters = inspect.signature(command).parameters
        added = _without_clash(COMMON_OPTIONS, parameters) + extra
        added_names = {p.name for p in added}
        passed_on = [p.name for p in extra if p.name in parameters]
        supplied = {"config", "limits", "quality", *passed_on}  # made by the wrapper from the options
        own = [p for p in parameters.values() if p.name not in supplied]

        @functools.wraps(command)
        def wrapper(**values: Any) -> None:
            common = {name: values.pop(name) for name in list(values) if name in added_names}
            if "broker_port" in common:
                common["port"] = common.pop("broker_port")
            setup_logging(common["debug"], common["log_format"])
            try:
                password = _password(common["password"], common["password_file"])
            except UsageError as error:
                _fail(str(error), common["debug"], common["log_format"])
            config = PipelineConfig(
                broker=BrokerSettings(
                    common["host"], common["port"], common["user"], password, common["vhost"],
                    tls=common["tls"] or common["tls_ca_file"] != NO_FILE,
                    tls_ca_file=None if common["tls_ca_file"] == NO_FILE else common["tls_ca_file"],
                    load_balancer=common["load_balancer"], dead_after_s=common["dead_after"]),
                names=StreamNames(common["stream_prefix"]),
                retention=Retention(common["max_age"], common["max_bytes"], common["segment_bytes"]),
                logs_dir=common["logs_dir"],
                log_format=common["log_format"],
            )
            if "join_window" in common:
                values["limits"] = JoinLimits(common["join_window"], common["max_pending"])
            if "window" in common:
                values["quality"] = _quality_options(common)
            values.update({name: common[name] for name in passed_on})
            try:
                status = command(config=config, **values)
            except UsageError as error:
                _fail(str(error), common["debug"], config.log_format)
            except EXPLAINED_ERRORS as error:
                _fail(explain(error, config.broker), common["debug"], config.log_format)
            raise typer.Exit(status or 0)

        wrapper.__signature__ = inspect.Signature(own + list(added))  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _without_clash(
    options: tuple[inspect.Parameter, ...], own: Mapping[str, inspect.Parameter]
) -> tuple[inspect.Parameter, ...]:
    """The common options, with the broker's --port renamed --broker-port for a
    command that has a --port of its own (the dashboard's web port)."""
    if "port" not in own:
        return options
    return tuple(_broker_port("--broker-port") if option.name == "port" else option for option in options)


def _password(password: str, password_file: Path) -> str:
    if password_file == NO_FILE:
        return password
    try:
        return password_file.read_text().splitlines()[0] if password_file.stat().st_size else ""
    except OSError as error:
        raise UsageError(f"cannot read --password-file {password_file}: {error.strerror}") from None


def _fail(message: str, debug: bool, log_format: LogFormat) -> NoReturn:
    if debug:
        raise
    if log_format is LogFormat.JSON:
        log.error("%s", message)
    else:
        typer.echo(f"nnmon: error: {message}", err=True)
    raise typer.Exit(2)


@app.command()
@pipeline_command()
def features(
    config: PipelineConfig,
    interval: Annotated[float, typer.Option(
        envvar="NNMON_INTERVAL", min=0,
        help="Seconds between events; 0 = as fast as the broker takes them.")] = 10.0,
    count: Annotated[int | None, typer.Option(envvar="NNMON_COUNT", min=1,
                                                 help="Stop after this many events.")] = None,
    seed: Annotated[int, typer.Option(envvar="NNMON_SEED", help="Shuffles the order of the rows.")] = 0,
    concept_drift_after: Annotated[int | None, typer.Option(
        envvar="NNMON_CONCEPT_DRIFT_AFTER", min=0,
        help="A demo of a changing world: after this many events every y_true becomes "
             "1.25 * y_true + 25, while the features stay as they are.")] = None,
    covariate_drift_after: Annotated[int | None, typer.Option(
        envvar="NNMON_COVARIATE_DRIFT_AFTER", min=0,
        help="A demo of drifting inputs: after this many events bmi and s5 each grow by their "
             "standard deviation in the data set, the other features and y_true stay.")] = None,
    data: DataOption = None,
    target: TargetOption = None,
    id_column: IdColumnOption = None,
    cycle: CycleOption = False,
) -> None:
    """Publish the diabetes rows (or your own, --data) as features and y_true events."""
    from nnmon.processors.core.dataset import DemoDrift
    from nnmon.processors.pipeline.features import run_features

    data_file = _data_file(data, target, id_column, cycle, covariate_drift_after)
    drift = DemoDrift(concept_drift_after, covariate_drift_after)
    run_until_stopped(lambda stop: run_features(config, stop, interval, count, seed, drift, data_file, cycle))


@app.command()
@pipeline_command()
def model(
    config: PipelineConfig,
    model_path: Annotated[Path | None, typer.Option(
        envvar="NNMON_MODEL_PATH",
        help="A model of your own, used instead of the built-in one: an ONNX model (.onnx) or a "
             "joblib-saved scikit-learn regressor.")] = None,
    builtin: Annotated[str, typer.Option(
        "--model", envvar="NNMON_MODEL",
        help="The built-in model, fitted on the diabetes set: linear (LinearRegression) or mlp "
             "(a small neural network, scikit-learn's MLPRegressor).")] = "linear",
    data: DataOption = None,
    target: TargetOption = None,
    id_column: IdColumnOption = None,
) -> None:
    """Predict every features event and publish y_pred."""
    from nnmon.processors.core.predictor import builtin_predictor
    from nnmon.processors.pipeline.model import run_model
    from nnmon.processors.shell.model_file import load_predictor
    from nnmon.processors.shell.quality_setup import check_builtin_model

    check_builtin_model(builtin)
    data_file = _data_file(data, target, id_column)  # its columns are the features a model of your own takes
    features = None if data_file is None else data_file.dataset.feature_names
    predictor = builtin_predictor(builtin) if model_path is None else load_predictor(model_path, features)
    run_until_stopped(lambda stop: run_model(config, stop, predictor))


@app.command()
@pipeline_command(*JOIN_OPTIONS, *QUALITY_OPTIONS)
def metric(config: PipelineConfig, limits: JoinLimits, quality: Any) -> None:
    """Join y_true and y_pred by id, append rows to metric_log.csv, close quality
    windows (metric_windows.csv, the quality and alerts streams)."""
    from nnmon.processors.pipeline.metric import run_metric
    from nnmon.processors.replay.reference import quality_settings

    settings = asyncio.run(quality_settings(config, quality))
    run_until_stopped(lambda stop: run_metric(config, stop, limits, settings))


@app.command()
@pipeline_command(*QUALITY_OPTIONS)
def drift(config: PipelineConfig, quality: Any, data: DataOption = None, target: TargetOption = None,
          id_column: IdColumnOption = None) -> None:
    """Measure the drift of every feature, y_pred and y_true per window against a
    reference (drift.csv, the drift and alerts streams); by default the
    built-in data set, or the --data file features publishes."""
    from nnmon.processors.pipeline.drift import run_drift
    from nnmon.processors.replay.reference import drift_settings
    from nnmon.processors.run.runtime import lower_priority

    settings = asyncio.run(drift_settings(config, quality, _data_file(data, target, id_column)))

    async def main(stop: asyncio.Event) -> None:
        lower_priority()  # as plot does (see there)
        await run_drift(config, stop, settings)

    run_until_stopped(main)


@app.command()
@pipeline_command(*JOIN_OPTIONS)
def plot(
    config: PipelineConfig,
    limits: JoinLimits,
    every: Annotated[float, typer.Option(envvar="NNMON_PLOT_EVERY", min=0.1,
                                         help="Seconds between redraws under steady traffic.")] = 10.0,
    from_offset: Annotated[str | None, typer.Option(
        help="First rebuild the histogram from the history after this point of y_true: "
             "first, last, next, an offset or an ISO-8601 time.")] = None,
) -> None:
    """Draw the distribution of absolute errors to error_distribution.png."""
    from nnmon.processors.pipeline.plot import run_plot
    from nnmon.processors.run.runtime import lower_priority

    start = None if from_offset is None else _start(from_offset)

    async def main(stop: asyncio.Event) -> None:
        # Once the signal handlers are in place: a SIGTERM that comes as soon
        # as the niceness shows (a test waits for it) stops plot cleanly.
        lower_priority()
        await run_plot(config, stop, limits, every, start)

    run_until_stopped(main)


@app.command()
@pipeline_command(*JOIN_OPTIONS, *QUALITY_OPTIONS)
def replay(
    config: PipelineConfig,
    limits: JoinLimits,
    quality: Any,
    from_offset: Annotated[str, typer.Option(
        help="Where in y_true to start: first, last, next, an offset (inclusive) "
             "or an ISO-8601 time (stream time; local time without a zone).")],
    to_offset: Annotated[int | None, typer.Option(
        min=0, help="Last y_true offset to replay (inclusive); needs --out.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Write the CSV (and PNG beside it) here and leave the live log alone.")] = None,
    plot: Annotated[bool, typer.Option(help="Also rebuild the PNG.")] = True,
    drift: Annotated[bool, typer.Option("--drift/--no-drift", help="Also rebuild drift.csv.")] = True,
) -> None:
    """Rebuild the CSV, its windows, drift.csv (and PNG) from the streams' history, then exit."""
    from nnmon.processors.replay.drift import rebuild_drift
    from nnmon.processors.replay.history import replay as run_replay
    from nnmon.processors.replay.rebuild import drift_out, rebuild_views
    from nnmon.processors.replay.reference import drift_settings, quality_settings

    start = _start(from_offset)
    if to_offset is not None and out is None:
        raise UsageError("--to-offset needs --out: the live log must reach the streams' end, "
                         "where metric carries on")

    settings = asyncio.run(quality_settings(config, quality))
    drift_of = asyncio.run(drift_settings(config, quality)) if drift else None

    async def main(stop: asyncio.Event) -> None:
        began = time.monotonic()
        with _progress_bar() as progress:
            result = await run_replay(config, start, to_offset, progress)
        csv_path, png_path = await rebuild_views(config, result, out, plot, limits, settings)
        drifted = None if drift_of is None else await rebuild_drift(
            config, drift_of, start, None if out is None else drift_out(out), to_offset)
        seconds = time.monotonic() - began  # reading, joining and writing the views
        for note in result.notes:
            typer.echo(f"note: {note}", err=True)
        where = ("nothing to replay" if result.first_read is None else
                 f"{config.names.y_true} offsets {result.first_read}..{result.ends[config.names.y_true]}")
        typer.echo(f"replayed {len(result.rows)} rows to {csv_path}"
                   + (f" and {png_path}" if png_path else "")
                   + f" from {where}: {len(result.unmatched)} y_true without prediction, "
                   f"{result.rejected} rejected; "
                   + ("" if drifted is None else f"the drift of {drifted.rows} events to {drifted.path}; ")
                   + f"{seconds:.2f}s")

    run_until_stopped(main)


@app.command()
@pipeline_command(*QUALITY_OPTIONS)
def check(
    config: PipelineConfig,
    quality: Any,
    from_offset: Annotated[str, typer.Option(
        help="Where in y_true to start: first, last, next, an offset (inclusive) or an ISO-8601 time.")
    ] = "first",
    to_offset: Annotated[int | None, typer.Option(min=0, help="Last y_true offset (inclusive).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
) -> int:
    """Judge the quality and drift windows of history by the alert rules: exit 0 if
    no rule fired, 1 if one did, 2 on errors."""
    import json

    from nnmon.processors.replay.check import check as run_check
    from nnmon.processors.replay.reference import drift_settings, quality_settings

    start = _start(from_offset)
    settings = asyncio.run(quality_settings(config, quality))
    drift = asyncio.run(drift_settings(config, quality))
    checked = asyncio.run(run_check(config, start, to_offset, settings, drift))
    typer.echo(json.dumps(checked.to_json(), indent=2) if as_json else checked.to_text(), nl=as_json)
    return 1 if checked.fired else 0


def _start(where: str) -> Any:
    from nnmon.streams.read.offsets import BadOffset, parse_start

    try:
        return parse_start(where)
    except BadOffset as error:
        raise UsageError(f"--from-offset: {error}") from None


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on a terminal's stderr; nothing when stderr is not one."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("replaying y_true", total=None)

        def update(done: int, total: int) -> None:
            if done % 1000 == 0 or done == total:
                bar.update(task, completed=done, total=total)

        yield update


MANAGEMENT_URL = _option("", "--management-url", "NNMON_MANAGEMENT_URL",
                         "RabbitMQ's management API, for retention and message counts "
                         "(default: http://<--host>:15672).", show_default=False)

BROKER_DATA_DIR = _option(Path("/var/lib/rabbitmq/mnesia"), "--broker-data-dir", "NNMON_BROKER_DATA_DIR",
                          "The broker's data directory, when it is on this machine: sizes on disk.")


@app.command()
@pipeline_command(MANAGEMENT_URL, BROKER_DATA_DIR)
def status(
    config: PipelineConfig,
    management_url: str,
    broker_data_dir: Path,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
    stale: Annotated[float | None, typer.Option(
        min=0, help="Exit 1 if a consumer has had messages waiting longer than this many seconds.")] = None,
    fail_on_alert: Annotated[bool, typer.Option(help="Exit 1 if an alert rule is firing.")] = False,
) -> int:
    """Show the streams, each consumer's offset and lag, the join and the CSV."""
    import json

    from nnmon.processors.watch.status import collect
    from nnmon.processors.watch.status_table import render
    from nnmon.streams.client.management import default_url

    url = management_url or default_url(config.broker)
    found = asyncio.run(collect(config, url, broker_data_dir))
    if as_json:
        typer.echo(json.dumps(found.to_json(), indent=2))
    else:
        typer.echo(render(found, stale), nl=False)
    late = [] if stale is None else found.stale(stale)
    for consumer in late:
        typer.echo(f"nnmon status: {consumer.processor} has had {consumer.stream} messages waiting "
                   f"{consumer.behind_s:.1f}s (more than --stale {stale:g}s)", err=True)
    firing = found.firing() if fail_on_alert else []
    if firing:
        typer.echo(f"nnmon status: alerts firing: {', '.join(firing)}", err=True)
    return 1 if late or firing else 0


@app.command()
@pipeline_command(MANAGEMENT_URL, BROKER_DATA_DIR)
def dashboard(
    config: PipelineConfig,
    management_url: str,
    broker_data_dir: Path,
    port: Annotated[int, typer.Option(envvar="NNMON_DASHBOARD_PORT", min=1, max=65535,
                                      help="Port of the web page.")] = 8050,
    bind: Annotated[str, typer.Option(envvar="NNMON_DASHBOARD_BIND",
                                      help="Address to serve on; localhost only by default.")] = "127.0.0.1",
) -> None:
    """Serve a live web page (and /metrics for Prometheus) until Ctrl-C."""
    from nnmon.processors.watch.dashboard import run_dashboard
    from nnmon.streams.client.management import default_url

    url = management_url or default_url(config.broker)
    run_until_stopped(lambda stop: run_dashboard(config, stop, bind, port, url, broker_data_dir))


@app.command()
@pipeline_command(*QUALITY_OPTIONS)
def up(
    config: PipelineConfig,
    quality: Any,
    interval: Annotated[float, typer.Option(min=0, help="Seconds between events.")] = 10.0,
    count: Annotated[int | None, typer.Option(
        min=1, help="Exit 0 once this many new rows are in the CSV and drawn in the PNG.")] = None,
    seed: Annotated[int, typer.Option(help="Shuffles the order of the rows.")] = 0,
    every: Annotated[float, typer.Option(min=0.1, help="Seconds between PNG redraws.")] = 10.0,
    timeout: Annotated[float | None, typer.Option(
        min=0, help="Exit 1 if --count is not reached within this many seconds.")] = None,
    dashboard: Annotated[bool, typer.Option(help="Also serve the dashboard (nnmon dashboard).")] = False,
    dashboard_port: Annotated[int, typer.Option(envvar="NNMON_DASHBOARD_PORT", min=1, max=65535,
                                                help="The dashboard's port.")] = 8050,
    concept_drift_after: Annotated[int | None, typer.Option(
        min=0, help="After this many events the truths drift (see nnmon features --help).")] = None,
    covariate_drift_after: Annotated[int | None, typer.Option(
        min=0, help="After this many events bmi and s5 drift (see nnmon features --help).")] = None,
    model_path: Annotated[Path | None, typer.Option(
        envvar="NNMON_MODEL_PATH", help="The model of your own model runs (see nnmon model --help).")] = None,
    without_model: Annotated[bool, typer.Option(
        "--no-model", help="Leave out the built-in features and model: only the processors that watch, "
                           "for a service that logs its own predictions (nnmon.Monitor).")] = False,
    data: DataOption = None,
    target: TargetOption = None,
    id_column: IdColumnOption = None,
    cycle: CycleOption = False,
) -> int:
    """Run all five processors (and the dashboard) together until Ctrl-C (or --count)."""
    from nnmon.processors.cli.supervisor import UpOptions, quality_arguments, run_up
    from nnmon.processors.replay.reference import drift_settings, quality_settings

    # Bad options stop `up` here, not in features, model, metric or drift.
    data_file = _data_file(data, target, id_column, cycle, covariate_drift_after)
    if without_model:
        given = {"--model-path": model_path, "--cycle": cycle or None,
                 "--concept-drift-after": concept_drift_after,
                 "--covariate-drift-after": covariate_drift_after}
        for name, value in given.items():
            if value is not None:
                raise UsageError(f"{name} is for the built-in features and model: --no-model leaves them out")
    if data_file is not None and not cycle and count is not None and count > len(data_file.dataset.target):
        raise UsageError(f"--count {count}: --data {data} has {len(data_file.dataset.target)} rows "
                         "(--cycle to go through it again)")
    data_arguments = () if data is None else (
        "--data", str(data), "--target", str(target), *(("--id-column", id_column) if id_column else ()))
    if model_path is not None:
        from nnmon.processors.shell.model_file import load_predictor

        load_predictor(model_path, None if data_file is None else data_file.dataset.feature_names)
    elif data_file is not None and not without_model:
        from nnmon.processors.core.dataset import diabetes

        if set(data_file.dataset.feature_names) != set(diabetes().feature_names):
            names = ", ".join(data_file.dataset.feature_names)
            raise UsageError(f"--data {data}: its features ({names}) are not the built-in model's: "
                             "give your model (--model-path), or --no-model")
    asyncio.run(quality_settings(config, quality))
    asyncio.run(drift_settings(config, quality, data_file))
    status: list[int] = []

    async def main(stop: asyncio.Event) -> None:
        status.append(await run_up(config, stop, UpOptions(
            interval, count, seed, every, timeout, dashboard_port if dashboard else None,
            concept_drift_after, covariate_drift_after, quality_arguments(quality), quality.model,
            model_path, not without_model, data_arguments, cycle)))

    run_until_stopped(main)
    return status[0]


def main() -> None:
    """The console entry point: usage errors become one line and status 2."""
    try:
        status = app(prog_name="nnmon", standalone_mode=False)
    except typer.TyperException as error:  # usage errors: bad option, value or command
        context = getattr(error, "ctx", None)
        command = context.command_path if context is not None else "nnmon"
        if error.format_message():  # empty when the help was shown instead
            print(f"{command}: error: {error.format_message()} (see '{command} --help')", file=sys.stderr)
        sys.exit(error.exit_code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
