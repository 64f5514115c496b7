"""Steps on the long-running workers: the two history sinks and the processing worker."""

from __future__ import annotations

import time

from cli.demo.offsets import end_offsets, start_at, wait_committed, wait_joined
from cli.demo.run import DERIVED_TOPICS, PLAN_TOPICS, SOURCE_TOPICS, DemoRun, started
from cli.demo.watcher import Watcher
from cli.infra import console
from twin.topics import ALARM_COMMANDS, SCHEDULE_REQUESTS

SINKS = ("cassandra", "elasticsearch")


def _sink_topics(name: str) -> tuple[str, ...]:
    if name == "cassandra":
        from sinks.cassandra import CassandraSink

        return CassandraSink.topics
    from sinks.elasticsearch import ElasticsearchSink

    return ElasticsearchSink.topics


def _sink_group(run: DemoRun, name: str) -> str:
    return f"{run.settings.sinks.group_prefix}-{name}"


def start_sinks(run: DemoRun) -> None:
    """``twin sink cassandra`` and ``twin sink elasticsearch`` as child processes.

    A sink group that has never committed starts at the end of its topics (the demo shows this
    run); one that has keeps its place, so nothing produced between demos is left out of history.
    """
    for name in SINKS:
        group = _sink_group(run, name)
        start_at(run.settings, group, end_offsets(run.settings, _sink_topics(name)), unless_committed=True)
        args = ["sink", name, "--metrics-port", "0", "--no-create-topics"]
        child = run.sinks[name] = run.children.start(f"twin sink {name}", args, f"demo-sink-{name}.log")
        console.print(f"twin sink {name} (pid {child.pid}, group {group})")


def start_worker(run: DemoRun) -> None:
    """``twin process`` in a fresh group that starts at the end of its inputs (it shows this run,
    not old events), and the watcher that prints its anomalies and alarms."""
    settings = run.settings
    derived_before = end_offsets(settings, (*DERIVED_TOPICS, *PLAN_TOPICS))
    start_at(settings, run.app_id, end_offsets(settings, (*SOURCE_TOPICS, ALARM_COMMANDS)))
    start_scheduler(run)
    args = ["process", "--app-id", run.app_id, "--metrics-port", "0", "--no-create-topics",
            "--factory", str(run.factory_path)]  # fmt: skip
    run.worker = run.children.start("twin process", args, "demo-processors.log", grace_s=60)
    run.on_exit(lambda: stop_worker(run))
    # The line is sped up: a worker still starting when it begins is minutes of simulated time
    # behind, and answers the run's breakdowns only after the line has stopped.
    with console.status("the worker joins its consumer group…"):
        if not wait_joined(settings, run.app_id, run.worker, limit_s=60):
            console.print("the worker has not joined its group after 60 s; the line starts anyway")
    run.watcher = Watcher(settings, derived_before, machines=run.machines)
    run.watcher.start()
    console.print(f"twin process (pid {run.worker.pid}): anomalies and alarms print below as they happen")


def _scheduler_group(run: DemoRun) -> str:
    return f"{run.app_id}-scheduler"


def start_scheduler(run: DemoRun) -> None:
    """``twin schedule serve`` in a fresh group at the end of schedule.requests: it answers this
    run's breakdowns; the line follows its plans (producers.plans)."""
    group = _scheduler_group(run)
    start_at(run.settings, group, end_offsets(run.settings, (SCHEDULE_REQUESTS,)))
    args = ["schedule", "serve", "--group", group, "--metrics-port", "0", "--no-create-topics"]
    run.scheduler = run.children.start("twin schedule serve", args, "demo-scheduler.log")
    console.print(
        f"twin schedule serve (pid {run.scheduler.pid}): re-plans print below when a machine goes down"
    )


def wait_processed(run: DemoRun) -> None:
    """Until the worker has committed everything the line produced; then stop it."""
    worker = started(run.worker, "the processing worker")
    with console.status("processing what was produced…"):
        wait_committed(run.settings, run.app_id, run.after, worker, limit_s=120)
        time.sleep(2)  # the last checkpoint's line events
        if run.scheduler is not None:  # every request of this run answered
            ends = end_offsets(run.settings, (SCHEDULE_REQUESTS,))
            wait_committed(run.settings, _scheduler_group(run), ends, run.scheduler, limit_s=120)
    stop_worker(run)
    counts = started(run.watcher, "the watcher").counts
    console.print(
        "derived from this run: "
        + "  ".join(f"{t} {counts.get(t, 0):,}" for t in (*DERIVED_TOPICS, *PLAN_TOPICS))
    )


def stop_worker(run: DemoRun) -> None:
    """Stop the worker and the watcher; delete the worker's changelog and repartition topics (a
    demo leaves no litter). Safe to call twice: the normal path and the way out both do."""
    from pipelines.topics import delete_topics

    if run.scheduler is not None:
        scheduler, run.scheduler = run.scheduler, None
        run.children.stop(scheduler)
    if run.worker is None:
        return
    worker, run.worker = run.worker, None
    run.children.stop(worker)
    if run.watcher is not None:
        run.watcher.stop()
    delete_topics(run.settings, lambda name: name.startswith(f"{run.app_id}-"))


def wait_written(run: DemoRun) -> None:
    """Until each sink has committed everything now on its topics (rows written, then commit)."""
    with console.status("writing history to Cassandra and Elasticsearch…"):
        for name, sink in run.sinks.items():
            ends = end_offsets(run.settings, _sink_topics(name))
            wait_committed(run.settings, _sink_group(run, name), ends, sink, limit_s=180)
    console.print("history written: every event of this run is in Cassandra and Elasticsearch")


def stop_sinks(run: DemoRun) -> None:
    run.children.stop(*run.sinks.values())
