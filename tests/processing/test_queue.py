"""The shared generation queue runs jobs one at a time in arrival order and reports positions."""
import threading
import time

import pytest

from webui.processing.jobs import JobState
from webui.processing.queue import GenerationQueue


def test_jobs_run_one_at_a_time_in_order():
    queue = GenerationQueue()
    order, running, overlap = [], [0], []
    first = JobState()
    started = threading.Event()

    def work(name, delay):
        running[0] += 1
        overlap.append(running[0])
        started.set()
        time.sleep(delay)
        order.append(name)
        running[0] -= 1

    t0 = threading.Thread(target=queue.run, args=(first, lambda: work("a", 0.3)))
    t0.start()
    started.wait(2)
    jobs = [JobState() for _ in range(3)]
    threads = []
    for index, job in enumerate(jobs):
        thread = threading.Thread(target=queue.run, args=(job, lambda n=index: work(f"b{n}", 0.01)))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 2
        while queue.position(job) is None and time.monotonic() < deadline:
            time.sleep(0.005)
    assert queue.position(first) == 0
    assert [queue.position(job) for job in jobs] == [1, 2, 3]
    for thread in [t0, *threads]:
        thread.join(5)
    assert order == ["a", "b0", "b1", "b2"]
    assert max(overlap) == 1
    assert queue.current is None and queue.pending() == 0


def test_interrupt_reaches_the_running_job_and_errors_release_the_slot():
    queue = GenerationQueue()
    job = JobState()
    with queue.slot(job):
        assert queue.interrupt_current()
    assert job.interrupted
    assert not queue.interrupt_current()
    with pytest.raises(ZeroDivisionError):  # the job's own error reaches the caller...
        queue.run(JobState(), lambda: 1 / 0)
    assert queue.current is None and queue.pending() == 0  # ...and its slot is free again
    assert queue.run(JobState(), lambda: 42) == 42


def test_live_preview_is_made_every_n_steps():
    made = []
    job = JobState(preview_every=2, make_preview=lambda latents: made.append(latents) or f"img{latents}")
    for i in range(5):
        job.step(i, 5, denoised=i)
    assert made == [1, 3] and job.preview == "img3"


def test_settings_persist_and_reject_bad_values(tmp_path):
    import json

    import pytest

    from webui.errors import UserInputError
    from webui.processing.settings import SettingsStore

    store = SettingsStore(tmp_path / "config.json")
    assert store.current.CLIP_stop_at_last_layers == 1
    store.update({"CLIP_stop_at_last_layers": 2, "sd_vae": "None"})
    assert json.loads((tmp_path / "config.json").read_text())["CLIP_stop_at_last_layers"] == 2
    assert SettingsStore(tmp_path / "config.json").current.sd_vae == "None"
    with pytest.raises(UserInputError, match="Unknown setting"):
        store.update({"no_such_option": 1})
    with pytest.raises(UserInputError):
        store.update({"CLIP_stop_at_last_layers": 99, "sd_vae": "Automatic"})
    assert store.current.sd_vae == "None"  # nothing applied from a rejected update


def test_a_new_batch_starts_its_progress_from_zero():
    job = JobState(job_count=2)
    job.begin(0)
    for i in range(4):
        job.step(i, 4)
    assert job.progress == 0.5
    job.begin(1)
    assert job.progress == 0.5 and job.sampling_step == 0  # not 1.0 from the previous image's last step
