# Copyright: Switchyard developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The styles the report's pages share (a host's page, render.py; the fleet's, fleet.py): inline, no file fetched."""

from __future__ import annotations

STYLE = """body { font: 14px/1.4 sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1em; } td, th { border: 1px solid #ccc; padding: 2px 6px;
text-align: left; }
th { background: #f3f3f3; } .num { text-align: right; font-variant-numeric: tabular-nums; }
.banner { border: 2px solid #d62728; background: #fde8e8; padding: .6em 1em; margin: 1em 0; }
.ok { border: 2px solid #1e8f3e; background: #e8f6ec; padding: .6em 1em; margin: 1em 0; }"""
