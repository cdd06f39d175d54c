"""The text of an HTML body as lines: walked as a tree (never rendered, nothing fetched or run), line breaks
where the layout breaks lines, tables turned into label lines, quoted replies and scripts left out."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag

from intake.email_parsing.quoting import QUOTE_MARK
from intake.email_parsing.tables import Cell, table_lines

_SKIP_TAGS = {"script", "style", "head", "title", "template", "noscript", "object", "embed", "iframe", "svg",
              "math", "blockquote"}
_QUOTE_CLASSES = {"gmail_quote", "gmail_quote_container", "yahoo_quoted", "moz-forward-container"}
_BLOCK_TAGS = {"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "pre", "section",
               "article", "header", "footer", "dl", "dt", "dd", "hr", "center", "address", "form", "fieldset"}


def _is_quote_element(tag: Tag) -> bool:
    classes = tag.get("class") or []
    return bool(_QUOTE_CLASSES.intersection(classes if isinstance(classes, list) else [classes]))


class _HtmlText:
    """One pass over the tree, without recursion (mail HTML can nest thousands deep): text where the
    layout puts it, line breaks where blocks and <br> break lines, tables turned into label lines.

    Written text goes to the innermost open cell, or to the body; a table's rows are collected while
    it is open and written, as lines, where the table stood."""

    def __init__(self) -> None:
        self.buffers: list[list[str]] = [[]]
        self.tables: list[list[list[Cell]]] = []
        self.pre = 0

    def write(self, text: str) -> None:
        self.buffers[-1].append(text)

    def text(self, root: Tag) -> str:
        stack: list[tuple[object, bool]] = [(root, False)]
        while stack:
            node, leaving = stack.pop()
            if leaving and isinstance(node, Tag):
                self.leave(node)
            elif isinstance(node, Tag):
                if node.name in _SKIP_TAGS or _is_quote_element(node):
                    continue  # quoted replies (<blockquote>, Gmail's gmail_quote), scripts, styles
                if node.get("id") == "divRplyFwdMsg":  # Outlook: the quoted message follows this header
                    self.write(f"\n{QUOTE_MARK}\n")
                    continue
                self.enter(node)
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.contents))
            elif type(node) is NavigableString:  # not a Comment, Doctype, CData...
                # HTML whitespace is not layout: collapse it, except inside <pre>.
                self.write(str(node) if self.pre else re.sub(r"\s+", " ", str(node)))
        return "".join(self.buffers[0])

    def enter(self, tag: Tag) -> None:
        if tag.name == "br":
            self.write("\n")
        elif tag.name == "table":
            self.tables.append([])
        elif tag.name == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag.name in ("td", "th"):
            self.buffers.append([])
        if tag.name == "pre":
            self.pre += 1
        if tag.name in _BLOCK_TAGS:
            self.write("\n")

    def leave(self, tag: Tag) -> None:
        if tag.name in ("td", "th"):
            cell = [ln.strip() for ln in "".join(self.buffers.pop()).split("\n") if ln.strip()]
            if not self.tables:  # a cell outside any table: keep its text
                self.write("\n" + "\n".join(cell) + "\n")
                return
            if not self.tables[-1]:
                self.tables[-1].append([])
            self.tables[-1][-1].append(cell)
        elif tag.name == "table" and self.tables:
            self.write("\n" + "\n".join(table_lines(self.tables.pop())) + "\n")
        if tag.name == "pre":
            self.pre -= 1
        if tag.name in _BLOCK_TAGS:
            self.write("\n")


def html_lines(markup: str) -> list[str]:
    """The text of an HTML body as lines, tables turned into label lines, quoted parts left out.
    The markup is only walked as a tree: nothing is fetched, run or rendered."""
    soup = BeautifulSoup(markup, "html.parser")
    return [ln.strip() for ln in _HtmlText().text(soup).split("\n")]
