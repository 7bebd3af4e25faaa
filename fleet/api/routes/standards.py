"""The published data standard (fleet/feed/standard/, package data) at /standards, as HTML
pages or raw files."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from markdown_it import MarkdownIt

from fleet.dashboard.templating import TEMPLATES

# Package data, so an installed fleet (a wheel, the container image) serves it too.
STANDARDS_DIR = Path(__file__).resolve().parents[2] / "feed" / "standard"
MEDIA_TYPES = {
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/schema+json",
    ".yaml": "application/yaml",
}

router = APIRouter(include_in_schema=False)
_markdown = MarkdownIt("commonmark").enable("table")
_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.DOTALL)


def published_files() -> dict[str, Path]:
    """Every file of the standard by its path under /standards (nothing else is served)."""
    return {
        path.relative_to(STANDARDS_DIR).as_posix(): path
        for path in sorted(STANDARDS_DIR.rglob("*"))
        if path.is_file() and path.suffix in MEDIA_TYPES
    }


def _served(target: str, files: dict[str, Path]) -> bool:
    return target in files or any(f.startswith(target.rstrip("/") + "/") for f in files)


def _local_links(html: str, name: str) -> str:
    """Keep links between files of the standard; unlink the ones that leave it (they work in
    the repository, e.g. ``../wire-format.md``, but nothing here serves them)."""
    files = published_files()

    def keep_or_unlink(match: re.Match[str]) -> str:
        href, text = match.group(1), match.group(2)
        if urlsplit(href).scheme or href.startswith(("/", "#")):
            return match.group(0)
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), urlsplit(href).path))
        return match.group(0) if _served(target, files) else text

    return _LINK.sub(keep_or_unlink, html)


def _page(request: Request, name: str, path: Path) -> HTMLResponse:
    html = _local_links(_markdown.render(path.read_text(encoding="utf-8")), name)
    return TEMPLATES.TemplateResponse(
        request, "standard.html", {"user": None, "name": name, "body": html}
    )


@router.get("/standards")
@router.head("/standards")
def standards_root() -> RedirectResponse:
    # The index lives at /standards/ so its relative links (catalogue.md, schemas/) resolve.
    return RedirectResponse("/standards/", status_code=status.HTTP_308_PERMANENT_REDIRECT)


@router.get("/standards/{name:path}")
@router.head("/standards/{name:path}")
def standards_file(
    name: str, request: Request, raw: bool = Query(False, description="The file as stored")
) -> Response:
    files = published_files()
    if name in ("", "/"):
        name = "README.md"
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
