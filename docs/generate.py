#!/usr/bin/env python3
"""generate.py: fill the lesson pages' outputs by running their commands.

A page marks each generated block like this:

    <!-- run: ./spy -o deadlock.log ./demos/deadlock -->
    ```
    ...whatever the command printed...
    ```
    <!-- end run -->

`docs/generate.sh` runs every command of a page, in order, in one scratch
directory where ./spy, ./analyze, ./libspy.so and ./demos lead to the built
tree, and writes what each printed (stdout and stderr, in order) between its
markers. The checkout's own path is shown as "." so that pages do not depend
on where the tree lives.

`docs/generate.sh --check [PAGE...]` writes nothing: it runs the commands and
fails when a page's outputs no longer match what the tools print, once the
parts that change from run to run are normalised away (addresses, pids,
times, sizes, counts, names cut to fit, line breaks, the order of lines, the
demo's own lines before spy's report) and a block differs in more than 15%
of its words, twice in a row.
"""
import os
import re
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LESSONS = os.path.join(TOP, 'docs', 'lessons')
BLOCK = re.compile(r'(<!-- run: (?P<cmd>.*?) -->\n)(?P<body>.*?)(<!-- end run -->)',
                   re.S)
MAX_LINES = 70


def run_page(text, scratch):
    """The output of every command of the page, in order."""
    outs = []
    for m in BLOCK.finditer(text):
        cmd = m.group('cmd')
        env = dict(os.environ, LC_ALL='C.UTF-8', TZ='UTC', NO_COLOR='1',
                   PATH='/usr/sbin:/usr/bin:/sbin:/bin')
        env.pop('LD_PRELOAD', None)
        env.pop('SPY_OPTIONS', None)
        # The standard output first, then the error output: a demo's own
        # lines (through a tee) and spy's report (on stderr) would
        # otherwise interleave as the processes happen to run.
        p = subprocess.run(['bash', '-c', cmd], cwd=scratch, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=120)
        out = (p.stdout + p.stderr).decode('utf-8', 'replace')
        out = out.replace(TOP + '/', './').replace(scratch + '/', '')
        out = out.replace(TOP, '.').replace(scratch, '.')
        lines = out.rstrip('\n').split('\n')
        if len(lines) > MAX_LINES:
            more = len(lines) - MAX_LINES
            lines = lines[:MAX_LINES] + [f'[... {more} more lines]']
        if p.returncode:
            lines.append(f'[exit status {p.returncode}]')
        outs.append('\n'.join(lines))
    return outs


def fill(text, outs):
    it = iter(outs)

    def one(m):
        out = next(it).replace('```', "'''")
        return (m.group(1) + '```\n$ ' + m.group('cmd') + '\n' + out +
                '\n```\n' + m.group(4))
    return BLOCK.sub(one, text)


def shape(text):
    """What stays the same from run to run: words, not numbers."""
    # A name cut to fit a column ("takes '...1].m'") is cut where the
    # numbers' widths say: drop the cut words.
    t = re.sub(r'\S*(\.\.\.|…)\S*', ' ', text)
    # Whether two threads happened to run at once decides this line.
    t = re.sub(r'\(false sharing was not checked:[^)]*\)', ' ', t)
    t = re.sub(r'0x[0-9a-fA-F]+', ' ', t)
    # Addresses printed without 0x (the map's ranges): 8 or more hex digits.
    t = re.sub(r'\b[0-9a-f]{8,16}\b', ' ', t)
    t = re.sub(r'\[exit status \d+\]', ' ', t)
    t = re.sub(r'\[\.\.\. \d+ more lines\]', ' ', t)
    t = re.sub(r'\d+(\.\d+)?', ' ', t)
    t = re.sub(r'\b(ns|us|µs|ms|s|sec|seconds?|bytes?|B|KiB|MiB|GiB|KB|MB|GB|'
               r'times?|calls?|threads?|blocks?|holes?|records?|events?|'
               r'switches|frames?|attempts?|writes?|reads?)\b', ' ', t)
    t = re.sub(r'[^A-Za-z_\-]+', ' ', t)
    return ' '.join(w.lower() for w in t.split())


def ours(text):
    """What libspy printed: a demo's own lines (its timings, whether its
    threads overlapped) come before spy's report, which starts with the
    process line, and are the demo's business, not the tools'."""
    m = re.search(r'^process +pid ', text, re.M)
    return text[m.start():] if m else text


def alike(old, new):
    """The same words, give or take a few: a page is stale when the tools
    now print something else, not when a count or a thread's order did."""
    a, b = set(shape(ours(old)).split()), set(shape(ours(new)).split())
    if not a and not b:
        return True
    return len(a ^ b) <= 0.15 * len(a | b)


def regenerate(text):
    with tempfile.TemporaryDirectory(prefix='libspy-docs.') as scratch:
        scratch = os.path.realpath(scratch)
        for name in ('spy', 'analyze', 'libspy.so', 'demos'):
            os.symlink(os.path.join(TOP, name), os.path.join(scratch, name))
        return run_page(text, scratch)


def bodies(text):
    return [m.group('body') for m in BLOCK.finditer(text)]


def body_output(body):
    """A block's output without the fence and the command line."""
    lines = body.strip('\n').split('\n')
    if lines and lines[0].startswith('```'):
        lines = lines[1:]
    if lines and lines[-1].startswith('```'):
        lines = lines[:-1]
    if lines and lines[0].startswith('$ '):
        lines = lines[1:]
    return '\n'.join(lines)


def main(argv):
    check = argv[:1] == ['--check']
    if check:
        argv = argv[1:]
    pages = argv or sorted(os.path.join(LESSONS, p)
                           for p in os.listdir(LESSONS)
                           if p.endswith('.md') and p != 'README.md')
    stale = 0
    for page in pages:
        with open(page, encoding='utf-8') as f:
            text = f.read()
        outs = regenerate(text)
        name = os.path.relpath(page, TOP)
        if not check:
            new = fill(text, outs)
            if new != text:
                with open(page, 'w', encoding='utf-8') as f:
                    f.write(new)
            print(f'{name}: {len(outs)} outputs')
            continue
        cmds = [m.group('cmd') for m in BLOCK.finditer(text)]
        olds = [body_output(b) for b in bodies(text)]
        bad = [i for i in range(len(cmds)) if not alike(olds[i], outs[i])]
        if bad:
            # A demo's timing can change what it shows (a thread storm
            # that did not build up): a block is stale when a second run
            # disagrees with the page too.
            outs2 = regenerate(text)
            bad = [i for i in bad if not alike(olds[i], outs2[i])]
        for i in bad:
            stale += 1
            a = set(shape(ours(olds[i])).split())
            b = set(shape(ours(outs[i])).split())
            print(f'{name}: stale output of "{cmds[i]}": only on the page: '
                  f'{" ".join(sorted(a - b)[:12])}; only now: '
                  f'{" ".join(sorted(b - a)[:12])}')
        if not cmds:
            stale += 1
            print(f'{name}: no generated output')
    if check and stale:
        print(f'{stale} stale outputs; run `make docs` and commit the pages')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
