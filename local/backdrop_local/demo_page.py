"""The demo's index.html: each job's input beside its generated backgrounds.

Pure rendering, no stack: `backdrop_local.demo` gathers `DemoJob`s and writes the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from urllib.parse import quote

TRIGGERS = {"api": "HTTPS API", "inbox": "inbox upload"}


@dataclass
class DemoJob:
    """One job as the demo saw it. Paths are relative to the output folder."""

    name: str
    trigger: str  # "api" or "inbox"
    input_path: str
    status: str = "failed"
    job_id: str | None = None
    prompt: str | None = None
    provider: str | None = None
    result_paths: list[str] = field(default_factory=list)
    queued_seconds: float | None = None  # the job's created_at -> updated_at
    waited_seconds: float | None = None  # wall time from submission until the demo saw the end
    error_code: str | None = None
    error_message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _image(path: str, alt: str, caption: str) -> str:
    # quote() keeps the path relative while making odd names valid in a URL.
    src = escape(quote(path))
    return (
        f'<figure><img src="{src}" alt="{escape(alt)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _job(job: DemoJob, emulated: bool) -> str:
    # The job names the provider it asked for; locally the emulator answers in its place.
    provider = f"{job.provider} (local emulator)" if emulated and job.provider else job.provider
    rows = [
        ("Prompt", job.prompt or "-"),
        ("Provider", provider or "-"),
        ("Trigger", TRIGGERS.get(job.trigger, job.trigger)),
        ("Job id", job.job_id or "-"),
        ("Status", job.status),
        ("Queued → finished", _seconds(job.queued_seconds)),
        ("Demo waited", _seconds(job.waited_seconds)),
    ]
    meta = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    error = ""
    if not job.succeeded:
        error = (
            f'<p class="error"><code>{escape(job.error_code or "unknown")}</code> '
            f"{escape(job.error_message or 'no error message')}</p>"
        )
    figures = [_image(job.input_path, f"{job.name} input", "input")]
    figures += [
        _image(path, f"{job.name} result {n}", f"result {n}")
        for n, path in enumerate(job.result_paths, 1)
    ]
    state = "ok" if job.succeeded else "bad"
    return (
        f'<section class="job {state}"><h2>{escape(job.name)} '
        f'<span class="tag">{escape(TRIGGERS.get(job.trigger, job.trigger))}</span>'
        f'<span class="status">{escape(job.status)}</span></h2>'
        f'<dl>{meta}</dl>{error}<div class="images">{"".join(figures)}</div></section>'
    )


CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
  padding: 0 1rem; color: #1d1d1f; background: #f5f5f7; }
h1 { margin-bottom: .25rem; }
.note { background: #fff4d6; border: 1px solid #e6c35c; border-radius: 8px; padding: .75rem 1rem; }
.job { background: #fff; border-radius: 10px; padding: 1rem 1.25rem; margin: 1.25rem 0;
  box-shadow: 0 1px 3px rgba(0,0,0,.12); border-left: 6px solid #34a853; }
.job.bad { border-left-color: #d93025; }
h2 { margin: 0 0 .5rem; font-size: 1.2rem; display: flex; gap: .6rem; align-items: center; }
.tag, .status { font-size: .75rem; font-weight: 600; padding: .1rem .5rem; border-radius: 999px;
  background: #e8eaed; }
.ok .status { background: #ceead6; color: #137333; }
.bad .status { background: #fad2cf; color: #a50e0e; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0; }
dt { color: #5f6368; } dd { margin: 0; word-break: break-all; }
.error { background: #fce8e6; color: #a50e0e; padding: .5rem .75rem; border-radius: 6px; }
.images { display: flex; flex-wrap: wrap; gap: .75rem; margin-top: .75rem; }
figure { margin: 0; text-align: center; }
img { width: 240px; height: 240px; object-fit: contain; background: #eee; border-radius: 6px;
  display: block; }
figure:first-child img { outline: 2px dashed #9aa0a6; outline-offset: 2px; }
figcaption { font-size: .8rem; color: #5f6368; }
"""


def render_page(jobs: list[DemoJob], *, emulated: bool, waited_seconds: float) -> str:
    """The whole page; every piece of text is escaped, every image path stays relative."""
    done = sum(job.succeeded for job in jobs)
    if emulated:
        note = (
            "<strong>Stand-in images, not AI output.</strong> These results come from the local "
            "provider emulator: each is the product cut out and composited over a generated "
            "backdrop, so the pipeline can run end to end without a provider account."
        )
    else:
        note = "These results come from the real provider API."
    body = "".join(_job(job, emulated) for job in jobs)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>backdrop demo</title><style>{CSS}</style></head><body>"
        "<h1>backdrop demo</h1>"
        f"<p>{done} of {len(jobs)} jobs succeeded; the demo waited "
        f"{escape(_seconds(waited_seconds))} in all.</p>"
        f'<p class="note">{note}</p>{body}</body></html>\n'
    )
