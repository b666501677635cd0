"""Runners for tests (see mnist_core/jobs/runner.py for the interface)."""

from __future__ import annotations


class QuietRunner:
    """What every test Runner (mnist_core/jobs/runner.py) has in common: nothing to admit, warm up or shut down."""

    slots = 1

    def admit(self, config):
        pass

    def warm_up(self):
        pass

    def describe(self):
        return "a runner of the tests"

    def shutdown(self):
        pass


class InProcessRunner(QuietRunner):
    """A Runner (mnist_core/jobs/runner.py) that runs each job's real work in a thread of this process, so a test
    can reach into training with monkeypatch (the app's LocalRunner runs it in worker processes)."""

    def __init__(self, mnist=None, slots: int = 1):
        self.mnist = mnist
        self.slots = slots

    def run(self, job, on_end):
        import threading

        from mnist_core.jobs import run_job
        from mnist_core.jobs.work import SAVING

        stop = threading.Event()

        def report(event):
            if event == SAVING:
                job.mark_saving()
            else:
                job.record(event)

        def work():
            job.end(run_job(job.spec, report, stop, mnist=self.mnist))
            on_end(job)

        threading.Thread(target=work, name=f"job-{job.job_id}", daemon=True).start()

        class Handle:
            def stop(self):
                stop.set()

            def cancel(self):
                stop.set()

        return Handle()

    def describe(self):
        return "threads of the test process"


class SlowSaveRunner(QuietRunner):
    """A Runner whose jobs go straight to saving, which takes `save_seconds`, then end as saved (no training)."""

    def __init__(self, save_seconds: float):
        self.save_seconds = save_seconds

    def run(self, job, on_end):
        import threading
        import time

        from mnist_core.jobs.job import JobOutcome, JobStatus

        def work():
            job.mark_running()
            job.mark_saving()
            time.sleep(self.save_seconds)
            job.end(JobOutcome(JobStatus.FINISHED, saved_name=job.spec.model_name, test_accuracy=0.99))
            on_end(job)

        threading.Thread(target=work, daemon=True).start()

        class Handle:
            def stop(self):
                pass

            def cancel(self):
                pass

        return Handle()
