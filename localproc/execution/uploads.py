"""Step 6, upload: the EndOfJob outputs of every instance, joined with what the Continuous
outputs' final pass did; a second Ctrl-C abandons what is still to go."""

from __future__ import annotations

from localproc.execution.context import RunContext
from localproc.transfer.upload import UploadReport, upload_outputs


def upload(ctx: RunContext) -> UploadReport:
    plan, notify = ctx.plan, ctx.notify
    end_of_job = [out for out in plan.outputs if out.upload_mode != "Continuous"]
    folders = {
        (instance.host, output.name): ctx.engine.output_folder(instance.host, output.name)
        for instance in plan.instances
        for output in end_of_job
    }
    with ctx.progress.phase("uploading outputs", None, None) as phase:
        report = upload_outputs(
            end_of_job, folders, ctx.store, ctx.job.output_kms_key_id,
            on_upload=lambda task: phase.advance(1, task.bytes),
            abandoned=lambda: ctx.stop.kill_now,  # a second Ctrl-C: give up at once
        )  # fmt: skip
    for skipped in report.skipped:
        notify(f"warning: not uploaded (not a regular file): {skipped}")
    report.merge(ctx.continuous_report)
    for collision in report.collisions:
        notify(f"warning: {collision}")
    # Every one, here: FailureReason names only the first few.
    for failure in report.failures:
        notify(f"warning: output not uploaded: {failure}")
    if report.abandoned:
        notify(
            f"warning: uploads abandoned (Ctrl-C twice): {len(report.abandoned)} output "
            "object(s) not uploaded: " + ", ".join(report.abandoned)
        )
    return report
