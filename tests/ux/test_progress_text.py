"""Progress text: "Loading model" only while a checkpoint loads, hires passes named, batches counted per image."""
from __future__ import annotations

from webui.processing.jobs import JobState
from webui.ui.generation import progress_html


def test_progress_names_what_is_happening():
    job = JobState(job_count=2, pass_names=("First pass", "Hires pass"))
    assert "Preparing…" in progress_html(job, None) and "Loading model" not in progress_html(job, None)
    assert "Loading model demo-shapes.safetensors…" in progress_html(job, None, "demo-shapes.safetensors")
    job.begin(1)
    job.step(2, 10)
    text = progress_html(job, None)
    assert "Step 3/10 · Hires pass" in text and "Batch" not in text  # one image, two passes
    batches = JobState(job_count=6, pass_names=("First pass", "Hires pass"))
    batches.begin(4)
    assert "First pass · Batch 3/3" in progress_html(batches, None)
    assert "Waiting in queue: position 2" in progress_html(batches, 2)
