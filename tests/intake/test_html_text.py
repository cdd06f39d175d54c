"""An HTML body's text as the intake reads it (intake.email_parsing.html_text, .tables): walked as a tree, tables
turned into `label: value` lines, quotes and scripts left out. Pure: no server, marked fast."""

from __future__ import annotations

import pytest

from intake.email_parsing.html_text import html_lines
from intake.email_parsing.tables import tab_tables

pytestmark = pytest.mark.fast


def text(markup: str) -> list[str]:
    return [ln for ln in html_lines(markup) if ln]


def test_label_value_table_nested_in_a_layout_table():
    markup = """<table><tr><td>โรงเรียนตัวอย่าง<br>รหัสโรงเรียน: 1044449001</td></tr>
      <tr><td><table>
        <tr><td>ชื่อ-สกุล</td><td>เด็กชาย <b>ทดสอบ</b> ใจดี</td></tr>
        <tr><th>เลขเดิม :</th><td>1 4499 00000 01 8</td></tr>
        <tr><td>เลขใหม่</td><td></td></tr>
      </table></td></tr></table>"""
    assert text(markup) == ["โรงเรียนตัวอย่าง", "รหัสโรงเรียน: 1044449001", "ชื่อ-สกุล: เด็กชาย ทดสอบ ใจดี",
                            "เลขประจำตัวประชาชนเดิม: 1 4499 00000 01 8", "เลขประจำตัวประชาชนใหม่:"]


def test_header_row_table_gives_every_column_of_every_row():
    markup = """<table><tr><th>ลำดับ</th><th>ชื่อ-สกุล</th><th>เลขเดิม</th><th>เลขใหม่</th></tr>
      <tr><td>1</td><td>ก ข</td><td>111</td><td>222</td></tr>
      <tr><td>2</td><td>ค ง</td><td></td><td>444</td></tr></table>"""
    assert text(markup) == ["ชื่อ-สกุล: ก ข", "เลขประจำตัวประชาชนเดิม: 111", "เลขประจำตัวประชาชนใหม่: 222",
                            "ชื่อ-สกุล: ค ง", "เลขประจำตัวประชาชนเดิม:", "เลขประจำตัวประชาชนใหม่: 444"]


def test_a_header_row_alone_is_an_empty_template():
    assert text("<table><tr><th>เลขเดิม</th><th>เลขใหม่</th></tr></table>") == []


def test_label_value_pairs_side_by_side():
    markup = "<table><tr><td>Old ID</td><td>111</td><td>New ID</td><td>222</td></tr></table>"
    assert text(markup) == ["เลขประจำตัวประชาชนเดิม: 111", "เลขประจำตัวประชาชนใหม่: 222"]


def test_quotes_scripts_and_comments_are_not_text():
    markup = """<div>เหตุผล: พิมพ์ผิด</div><!-- เลขใหม่: 999 --><script>var a = "เลขใหม่: 999"</script>
      <style>p {}</style><blockquote>เลขใหม่: 888</blockquote>
      <div class="gmail_quote">On Mon wrote:<br>เลขใหม่: 777</div>"""
    assert text(markup) == ["เหตุผล: พิมพ์ผิด"]


def test_outlook_reply_header_marks_where_the_quote_starts():
    markup = '<p>เลขใหม่: 1</p><div id="divRplyFwdMsg"><b>From:</b> x</div><p>เลขใหม่: 2</p>'
    assert text(markup) == ["เลขใหม่: 1", "-----Original Message-----", "เลขใหม่: 2"]


def test_whitespace_collapses_except_in_pre():
    assert text("<p>ชื่อ-สกุล:\n   ก\t\tข</p><pre>a   b\nc</pre>") == ["ชื่อ-สกุล: ก ข", "a   b", "c"]


def test_nesting_thousands_deep_does_not_overflow():
    depth = 5000
    assert text("<div>" * depth + "เลขใหม่: 1" + "</div>" * depth) == ["เลขใหม่: 1"]


def test_rows_pasted_from_a_spreadsheet_into_plain_text():
    lines = ["เรียน เขต", "ชื่อ-สกุล\tเลขเดิม\tเลขใหม่", "ก ข\t111\t222", "ค ง\t333\t444", "ขอบคุณ"]
    assert tab_tables(lines) == ["เรียน เขต", "ชื่อ-สกุล: ก ข", "เลขประจำตัวประชาชนเดิม: 111",
                                 "เลขประจำตัวประชาชนใหม่: 222", "ชื่อ-สกุล: ค ง", "เลขประจำตัวประชาชนเดิม: 333",
                                 "เลขประจำตัวประชาชนใหม่: 444", "ขอบคุณ"]


def test_tab_separated_text_without_labels_stays_as_it_is():
    lines = ["a\tb\tc", "1\t2\t3"]
    assert tab_tables(lines) == lines
