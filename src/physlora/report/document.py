"""A small document model rendered to Markdown and to self-contained HTML.

Sections build lists of blocks once, so report.md and report.html always state the same numbers.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Code:
    """Preformatted text; `collapsed` shows it folded under `title` (HTML details element)."""

    text: str
    title: str = ""
    language: str = ""
    collapsed: bool = False


@dataclass(frozen=True)
class Image:
    """A PNG file; `path` is relative to the report's folder."""

    path: str
    caption: str


Block = Heading | Paragraph | Bullets | Table | Code | Image


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


def _markdown_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _markdown_block(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + block.text]
    if isinstance(block, Paragraph):
        return [block.text]
    if isinstance(block, Bullets):
        return [f"- {item}" for item in block.items]
    if isinstance(block, Table):
        lines = ["| " + " | ".join(_markdown_cell(cell) for cell in block.header) + " |",
                 "|" + "---|" * len(block.header)]
        lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in block.rows]
        return lines
    if isinstance(block, Code):
        fence = "~~~~" if "```" in block.text else "```"
        body = [fence + block.language, block.text.rstrip("\n"), fence]
        if block.collapsed:
            return [f"<details><summary>{html.escape(block.title)}</summary>", "", *body, "", "</details>"]
        return ([block.title, ""] if block.title else []) + body
    if isinstance(block, Image):
        return [f"![{block.caption}]({block.path})"]
    raise TypeError(f"unknown block type {type(block).__name__}")


def render_markdown(document: Document) -> str:
    lines = [f"# {document.title}", ""]
    for block in document.blocks:
        lines += _markdown_block(block)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #bbb; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #eee; }
pre { background: #f6f6f6; padding: 0.75rem; overflow-x: auto; font-size: 0.85rem; }
img { max-width: 100%; }
"""


def _html_block(block: Block, base_dir: Path) -> str:
    escape = html.escape
    if isinstance(block, Heading):
        return f"<h{block.level}>{escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{escape(str(cell))}</th>" for cell in block.header)
        body = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Code):
        pre = f"<pre><code>{escape(block.text)}</code></pre>"
        if block.collapsed:
            return f"<details><summary>{escape(block.title)}</summary>{pre}</details>"
        return (f"<p>{escape(block.title)}</p>" if block.title else "") + pre
    if isinstance(block, Image):
        # Embedded as base64 so that the HTML file needs nothing beside it.
        encoded = base64.b64encode((base_dir / block.path).read_bytes()).decode("ascii")
        return (f'<figure><img alt="{escape(block.caption)}" src="data:image/png;base64,{encoded}">'
                f"<figcaption>{escape(block.caption)}</figcaption></figure>")
    raise TypeError(f"unknown block type {type(block).__name__}")


def render_html(document: Document, base_dir: Path) -> str:
    """Self-contained HTML: inline style, images embedded; `base_dir` resolves image paths."""
    body = "\n".join(_html_block(block, base_dir) for block in document.blocks)
    title = html.escape(document.title)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n")
