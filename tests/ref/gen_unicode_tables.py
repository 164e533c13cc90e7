"""Generate lib/text/unicode_tables.c and lib/text/html_entities.c for the CLIP tokenizer.

Run with Debian's Python (its `regex` module is the one OpenAI's simple_tokenizer.py uses):

    /usr/bin/python3 tests/ref/gen_unicode_tables.py

Every table is read off the behaviour of the Python functions the tokenizer must match, one code
point at a time, and then checked against unicodedata's categories:

  letter / number / space / none   what simple_tokenizer's pattern ([\\p{L}]+, [\\p{N}],
                                   [^\\s\\p{L}\\p{N}]+ with IGNORECASE) and whitespace_clean's \\s
                                   see, per code point, in the `regex` module
  isspace                          str.isspace (what str.strip() removes)
  lower                            str.lower: simple deltas + the few one-to-many mappings
  case_ignorable, cased            the two properties of str.lower's Final_Sigma rule (Σ -> ς at
                                   the end of a word), read off str.lower itself
  ignorecase equivalents           code points the pattern's literal letters also match
  html5 entities                   html.entities.html5 and html's invalid-charref tables

The `regex` module and unicodedata may implement different Unicode versions (regex 2022.10.31:
15.0; Python 3.11: 14.0).  The pattern's classes follow `regex`, as simple_tokenizer does; the
script checks that the two disagree only on code points unassigned in unicodedata's version.
"""
import html
import html.entities
import os
import sys
import unicodedata

import regex

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')
MAXCP = 0x110000

PATTERN = (r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"""
           r"""[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""")


def regex_version():
    try:
        import importlib.metadata as md
        return md.version('regex')
    except Exception:
        return getattr(regex, '__version__', '?')


def ranges(cps):
    """Sorted code points -> [(lo, hi)] runs."""
    out = []
    for cp in cps:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def lower_runs(pairs):
    """[(cp, delta)] sorted -> [(lo, hi, stride, delta)]: runs of equal delta, stride 1 or 2."""
    out = []
    i = 0
    while i < len(pairs):
        lo, d = pairs[i]
        hi, stride, j = lo, 1, i + 1
        if j < len(pairs) and pairs[j][1] == d and pairs[j][0] - lo in (1, 2):
            stride = pairs[j][0] - lo
            while j < len(pairs) and pairs[j][1] == d and pairs[j][0] == hi + stride:
                hi = pairs[j][0]
                j += 1
        out.append((lo, hi, stride, d))
        i = j
    return out


def c_ranges(name, rs, comment):
    lines = [f'/* {comment}: {len(rs)} ranges */',
             f'const mcnn_u_range {name}[] = {{']
    row = []
    for lo, hi in rs:
        row.append(f'{{0x{lo:X}, 0x{hi:X}}}')
        if len(row) == 6:
            lines.append('    ' + ', '.join(row) + ',')
            row = []
    if row:
        lines.append('    ' + ', '.join(row) + ',')
    lines.append('};')
    lines.append(f'const int {name}_n = {len(rs)};')
    return '\n'.join(lines) + '\n'


def c_str(s):
    """A C string literal holding the UTF-8 of s."""
    out = '"'
    for b in s.encode('utf-8'):
        if 0x20 <= b < 0x7F and chr(b) not in '"\\?':
            out += chr(b)
        else:
            out += f'\\{b:03o}'
    return out + '"'


def main():
    pat = regex.compile(PATTERN, regex.IGNORECASE)
    re_letter = regex.compile(r'[\p{L}]', regex.IGNORECASE)
    re_number = regex.compile(r'[\p{N}]', regex.IGNORECASE)
    re_other = regex.compile(r'[^\s\p{L}\p{N}]', regex.IGNORECASE)
    re_space = regex.compile(r'\s')

    letter, number, space, none, isspace = [], [], [], [], []
    lower_single, lower_multi = [], []
    case_ignorable, cased = [], []
    version_only = []  # classified by regex, unassigned in unicodedata
    SIGMA, FINAL = '\u03a3', '\u03c2'
    for cp in range(MAXCP):
        c = chr(cp)
        cat = unicodedata.category(c)
        is_l, is_n = bool(re_letter.match(c)), bool(re_number.match(c))
        is_s, is_o = bool(re_space.match(c)), bool(re_other.match(c))
        if is_l: letter.append(cp)
        if is_n: number.append(cp)
        if is_s: space.append(cp)
        assert is_l + is_n + is_s + is_o <= 1, hex(cp)
        if not (is_l or is_n or is_s or is_o): none.append(cp)
        # cross-check against unicodedata: only newer-version additions may differ
        if is_l != cat.startswith('L') or is_n != cat.startswith('N'):
            assert cat == 'Cn', f'U+{cp:04X}: regex says L={is_l} N={is_n}, unicodedata {cat}'
            version_only.append(cp)
        if c.isspace(): isspace.append(cp)
        lo = c.lower()
        if lo != c and cp != 0x3A3:  # Σ: context-dependent, handled in code
            if len(lo) == 1:
                lower_single.append((cp, ord(lo) - cp))
            else:
                lower_multi.append((cp, [ord(x) for x in lo]))
        # Final_Sigma: Σ after a cased letter (skipping case-ignorables) and not before one.
        t1 = (c + SIGMA).lower()[-1] == FINAL                # not CI and cased
        t4 = ('A' + SIGMA + c + 'B').lower()[1] == FINAL     # neither CI nor cased
        if not t1 and not t4:
            case_ignorable.append(cp)
        elif t1:
            cased.append(cp)
    # the derived properties must contain what their Unicode definitions say they contain
    ci = set(case_ignorable)
    for cp in range(MAXCP):
        cat = unicodedata.category(chr(cp))
        if cat in ('Mn', 'Me', 'Cf', 'Lm', 'Sk'):
            assert cp in ci, f'U+{cp:04X} ({cat}) should be case-ignorable'
    cs = set(cased)
    for cp in range(MAXCP):
        cat = unicodedata.category(chr(cp))
        if cat in ('Ll', 'Lu', 'Lt') and cp not in ci:
            assert cp in cs, f'U+{cp:04X} ({cat}) should be cased'
    assert none == [0x345], none  # the one code point the pattern skips: see unicode.h

    # code points the literal letters of the pattern also match under IGNORECASE
    fold = []
    for ch in sorted(set("startoftextendoftext'sre've'm'll'd<|>")):
        lit = regex.compile(regex.escape(ch), regex.IGNORECASE)
        for cp in range(MAXCP):
            if cp != ord(ch) and lit.fullmatch(chr(cp)):
                fold.append((ord(ch), cp))

    runs = lower_runs(lower_single)
    # check the runs reproduce the mapping
    got = {}
    for lo, hi, st, d in runs:
        for cp in range(lo, hi + 1, st):
            got[cp] = cp + d
    assert got == {cp: cp + d for cp, d in lower_single}

    pyver = sys.version.split()[0]
    head = f"""/* GENERATED by tests/ref/gen_unicode_tables.py -- do not edit.  Regenerate with
 *     /usr/bin/python3 tests/ref/gen_unicode_tables.py
 * Made with Python {pyver} (unicodedata {unicodedata.unidata_version}: str.lower, str.isspace,
 * Final_Sigma) and regex {regex_version()} (the pattern's classes; regex implements its own Unicode
 * tables, here newer than unicodedata's: {len(version_only)} code points unassigned in
 * {unicodedata.unidata_version} are letters or numbers to regex, and follow regex). */
#include "text/unicode.h"

"""
    body = head
    body += c_ranges('mcnn_u_letter', ranges(letter),
                     "regex [\\p{L}] under IGNORECASE")
    body += c_ranges('mcnn_u_number', ranges(number), "regex [\\p{N}] under IGNORECASE")
    body += c_ranges('mcnn_u_space', ranges(space), "regex \\s")
    body += c_ranges('mcnn_u_none', ranges(none),
                     "matched by no alternative of the pattern (neither \\s, L, N nor [^\\s\\p{L}\\p{N}])")
    body += c_ranges('mcnn_u_isspace', ranges(isspace), "str.isspace (what str.strip removes)")
    body += c_ranges('mcnn_u_case_ignorable', ranges(case_ignorable),
                     "Case_Ignorable as str.lower's Final_Sigma rule sees it")
    body += c_ranges('mcnn_u_cased', ranges(cased),
                     "Cased, among code points that are not case-ignorable")
    body += f'/* str.lower, one code point to one: lo..hi step stride maps to cp + delta: {len(runs)} runs */\n'
    body += 'const mcnn_u_lower_run mcnn_u_lower[] = {\n'
    for lo, hi, st, d in runs:
        body += f'    {{0x{lo:X}, 0x{hi:X}, {st}, {d}}},\n'
    body += '};\n'
    body += f'const int mcnn_u_lower_n = {len(runs)};\n'
    body += '/* str.lower, one code point to several (Σ is handled in code) */\n'
    body += 'const mcnn_u_lower_multi mcnn_u_lower_special[] = {\n'
    for cp, seq in lower_multi:
        assert len(seq) <= 3
        seq3 = seq + [0] * (3 - len(seq))
        body += f'    {{0x{cp:X}, {len(seq)}, {{0x{seq3[0]:X}, 0x{seq3[1]:X}, 0x{seq3[2]:X}}}}},\n'
    body += '};\n'
    body += f'const int mcnn_u_lower_special_n = {len(lower_multi)};\n'
    body += '/* the pattern is compiled with IGNORECASE: these code points also match its literal letters */\n'
    body += 'const uint32_t mcnn_u_fold_eq[][2] = {\n'
    for a, b in fold:
        body += f'    {{0x{a:X}, 0x{b:X}}},\n'
    body += '};\n'
    body += f'const int mcnn_u_fold_eq_n = {len(fold)};\n'
    with open(os.path.join(ROOT, 'lib', 'text', 'unicode_tables.c'), 'w') as f:
        f.write(body)

    # ---- HTML5 named character references and html.unescape's numeric fix-ups ----
    names = sorted(html.entities.html5.items(), key=lambda kv: kv[0].encode())
    for k, v in names:
        assert k.isascii() and 1 <= len(v) <= 2
    inv = sorted(html._invalid_charrefs.items())
    bad = ranges(sorted(html._invalid_codepoints))
    out = f"""/* GENERATED by tests/ref/gen_unicode_tables.py -- do not edit.  Regenerate with
 *     /usr/bin/python3 tests/ref/gen_unicode_tables.py
 * From Python {pyver}'s html module: html.entities.html5 ({len(names)} names, sorted by byte value,
 * some without their ';' as HTML5 allows), html._invalid_charrefs and html._invalid_codepoints. */
#include "text/html.h"

const mcnn_html_entity mcnn_html_entities[] = {{
"""
    for k, v in names:
        out += f'    {{{c_str(k)}, {c_str(v)}}},\n'
    out += '};\n'
    out += f'const int mcnn_html_entities_n = {len(names)};\n\n'
    out += '/* &#N; for these N gives the Windows-1252 reading (or U+FFFD for 0), not chr(N) */\n'
    out += 'const uint32_t mcnn_html_invalid_charrefs[][2] = {\n'
    for k, v in inv:
        assert len(v) == 1
        out += f'    {{0x{k:X}, 0x{ord(v):X}}},\n'
    out += '};\n'
    out += f'const int mcnn_html_invalid_charrefs_n = {len(inv)};\n\n'
    out += '/* &#N; for these N gives nothing (controls and noncharacters) */\n'
    out += c_ranges('mcnn_html_invalid_codepoints', bad, 'html._invalid_codepoints')
    with open(os.path.join(ROOT, 'lib', 'text', 'html_entities.c'), 'w') as f:
        f.write(out)
    print(f'letters {len(ranges(letter))} ranges, numbers {len(ranges(number))}, lower runs {len(runs)}, '
          f'multi {len(lower_multi)}, CI {len(ranges(case_ignorable))}, cased {len(ranges(cased))}, '
          f'fold {fold}, regex-only {len(version_only)}, entities {len(names)}')


if __name__ == '__main__':
    main()
