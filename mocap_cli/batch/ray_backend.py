"""The Ray backend of a batch (optional, ``--ray ADDRESS|auto|local``): the same per-clip function as the
process pool (``worker.run_job`` → ``run_clip``) as Ray tasks, one CPU each and ``num_gpus=1`` with
``--device cuda`` (a torch model); a task whose worker dies is retried once by Ray. The parent writes the
same report, sidecars and log. IN_DIR and OUT_DIR must be visible at the same paths on every node (a shared
filesystem); ``local`` starts Ray on this machine. Stage progress is not forwarded from Ray tasks (the
overall bar counts clips).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from mocap_cli.batch.report import LOG_NAME, ClipOutcome
from mocap_cli.batch.state import remove_outputs
from mocap_cli.batch.worker import run_job
from mocap_cli.errors import MocapError

if TYPE_CHECKING:
    from mocap_cli.batch.plan import BatchOptions, ClipJob
    from mocap_cli.batch.worker import ClipFn
    from mocap_cli.pipeline import RunOptions


def run_ray(
    todo: list[ClipJob],
    run_opts: dict[int, RunOptions],
    options: BatchOptions,
    clip_fn: ClipFn | None,
    started: Callable[[ClipJob], None],
    finished: Callable[[ClipJob, ClipOutcome], None],
    gpu: bool,
) -> None:
    """Ray tasks running ``run_job``; at most ``--jobs`` in flight when given, else all (Ray schedules)."""
    try:
        import ray
    except ImportError as exc:
        raise MocapError("--ray needs Ray; install it with `pip install 'mocap-cli[ray]'`.") from exc
    if not ray.is_initialized():
        try:
            address = None if options.ray_address == "local" else options.ray_address  # None: start one here
            ray.init(address=address, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            raise MocapError(
                f"Could not connect to Ray at '{options.ray_address}' ({type(exc).__name__}); "
                "check the address or use --ray auto on a cluster node."
            ) from exc
    gpus = 1 if gpu else 0
    task = ray.remote(run_job).options(num_cpus=1, num_gpus=gpus, max_retries=1)
    limit = options.jobs or len(todo)
    queue_jobs = list(todo)
    refs: dict[Any, ClipJob] = {}
    try:
        while queue_jobs or refs:
            while queue_jobs and len(refs) < limit:
                job = queue_jobs.pop(0)
                started(job)
                refs[task.remote(job, run_opts[job.index], clip_fn)] = job
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
            for ref in ready:
                job = refs.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a worker died twice or Ray failed the task
                    remove_outputs(job.outputs)
                    outcome = ClipOutcome(
                        "failed",
                        reason=f"The Ray task for this clip failed ({type(exc).__name__}); details are in {LOG_NAME}.",
                        traceback=str(exc),
                    )
                finished(job, outcome)
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
