"""The published data standard (docs/standards/) at /standards, as HTML pages or raw files."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markdown_it import MarkdownIt

from fleet.dashboard.templating import TEMPLATES

STANDARDS_DIR = Path(__file__).resolve().parents[3] / "docs" / "standards"
MEDIA_TYPES = {
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/schema+json",
    ".yaml": "application/yaml",
}

router = APIRouter(include_in_schema=False)
_markdown = MarkdownIt("commonmark").enable("table")


def published_files() -> dict[str, Path]:
    """Every file of the standard by its path under /standards (nothing else is served)."""
    return {
        path.relative_to(STANDARDS_DIR).as_posix(): path
        for path in sorted(STANDARDS_DIR.rglob("*"))
        if path.is_file() and path.suffix in MEDIA_TYPES
    }


def _page(request: Request, name: str, path: Path) -> HTMLResponse:
    html = _markdown.render(path.read_text(encoding="utf-8"))
    return TEMPLATES.TemplateResponse(
        request, "standard.html", {"user": None, "name": name, "body": html}
    )


@router.get("/standards", response_class=HTMLResponse)
def standards_index(request: Request) -> HTMLResponse:
    return _page(request, "README.md", STANDARDS_DIR / "README.md")


@router.get("/standards/{name:path}")
def standards_file(
    name: str, request: Request, raw: bool = Query(False, description="The file as stored")
) -> Response:
    if name in ("", "/"):
        return RedirectResponse("/standards")
    files = published_files()
    if name.endswith("/") and f"{name}" not in files:
        listing = [f for f in files if f.startswith(name)]
        if listing:
            body = "".join(f'<li><a href="/standards/{f}">{f}</a></li>' for f in listing)
            return HTMLResponse(f"<!doctype html><title>{name}</title><ul>{body}</ul>")
    path = files.get(name)
    if path is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the standard has no file {name!r}")
    if path.suffix == ".md" and not raw:
        return _page(request, name, path)
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix])
