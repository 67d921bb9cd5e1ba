#!/usr/bin/env python3
"""html_check.py: open a page in headless Chromium and say what rendered.

Usage: html_check.py CHROMIUM FILE.html
Prints one JSON object: the findings on the page, every <svg> with its
number of shapes and its rendered size, the console errors and page
exceptions, and whether the page asked for anything over the network.
Speaks the DevTools protocol over a WebSocket, with the standard library
only (no network beyond 127.0.0.1). Exits 2 when Chromium cannot be
driven at all.
"""
import base64
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

PROBE = r"""
(() => {
  if (document.readyState !== 'complete' || location.protocol !== 'file:')
    return null;
  const svgs = [...document.querySelectorAll('svg')].map(s => {
    const r = s.getBoundingClientRect();
    return {id: s.id, shapes: s.querySelectorAll('rect,path,line,text').length,
            width: r.width, height: r.height,
            data: Object.assign({}, s.dataset)};
  });
  const findings = [...document.querySelectorAll('article.finding')].map(a => ({
    kind: a.dataset.kind,
    severity: (a.className.match(/sev-(\w+)/) || [])[1], visible: a.getBoundingClientRect().height > 0,
    stacks: a.querySelectorAll('ol.stack').length,
    source: a.querySelectorAll('pre.src').length}));
  const cyc = [...document.querySelectorAll('#lock-graph g.edge.cycle')].map(
    g => [g.dataset.from, g.dataset.to]);
  const safe = [...document.querySelectorAll('#lock-graph g.edge.safe-cycle')
    ].map(g => [g.dataset.from, g.dataset.to]);
  return JSON.stringify({title: document.title, svgs, findings,
    cycle_edges: cyc, safe_cycle_edges: safe,
    no_findings: !!document.getElementById('no-findings'),
    text: document.body.innerText.length,
    scripts: document.scripts.length,
    load_ms: (() => { const n = performance.getEntriesByType('navigation')[0];
                      return n ? n.loadEventEnd - n.startTime : null; })()});
})()
"""


class Socket:
    def __init__(self, url):
        m = re.match(r'ws://([^:/]+):(\d+)(/.*)', url)
        self.s = socket.create_connection((m.group(1), int(m.group(2))), 30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f'GET {m.group(3)} HTTP/1.1\r\nHost: {m.group(1)}\r\n'
                        'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                        f'Sec-WebSocket-Key: {key}\r\n'
                        'Sec-WebSocket-Version: 13\r\n\r\n').encode())
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = self.s.recv(1)
            if not chunk:
                raise OSError('websocket handshake failed')
            head += chunk
        if b' 101 ' not in head.split(b'\r\n')[0]:
            raise OSError('websocket refused: ' + head.decode(errors='replace'))
        self.buf = b''
        self.next_id = 0

    def send(self, method, params=None):
        self.next_id += 1
        data = json.dumps({'id': self.next_id, 'method': method,
                           'params': params or {}}).encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + n.to_bytes(2, 'big')
        else:
            hdr += bytes([0x80 | 127]) + n.to_bytes(8, 'big')
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.s.sendall(hdr + mask + body)
        return self.next_id

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise OSError('websocket closed')
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        msg = b''
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7f
            if n == 126:
                n = int.from_bytes(self._read(2), 'big')
            elif n == 127:
                n = int.from_bytes(self._read(8), 'big')
            payload = self._read(n)
            if b0 & 0x0f in (0x1, 0x0):
                msg += payload
                if b0 & 0x80:
                    return json.loads(msg)


DID_NOT_START = 3


def main():
    chromium, page = sys.argv[1], os.path.abspath(sys.argv[2])
    profile = tempfile.mkdtemp(prefix='libspy-chromium.')
    proc = subprocess.Popen(
        [chromium, '--headless', '--no-sandbox', '--disable-gpu',
         '--disable-dev-shm-usage',
         '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run', '--disable-extensions',
         '--remote-debugging-port=0', '--remote-debugging-address=127.0.0.1',
         f'--user-data-dir={profile}', 'about:blank'],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        port = None
        deadline = time.time() + 60
        err = b''
        while time.time() < deadline and port is None:
            r, _, _ = select.select([proc.stderr], [], [], 1)
            if r:
                line = proc.stderr.readline()
                if not line:
                    break
                err += line
                m = re.search(rb'ws://127\.0\.0\.1:(\d+)/', line)
                if m:
                    port = int(m.group(1))
        if port is None:
            sys.stderr.write('html_check: chromium did not start:\n' +
                             err.decode(errors='replace')[-2000:])
            return DID_NOT_START
        targets = json.load(urllib.request.urlopen(
            f'http://127.0.0.1:{port}/json/list', timeout=30))
        ws_url = [t for t in targets if t['type'] == 'page'][0][
            'webSocketDebuggerUrl']
        ws = Socket(ws_url)
        errors, requests = [], []
        for m in ('Page.enable', 'Runtime.enable', 'Log.enable',
                  'Network.enable'):
            ws.send(m)
        nav = ws.send('Page.navigate', {'url': 'file://' + page})
        probe_id = None
        result = None
        ws.s.settimeout(0.2)
        deadline = time.time() + 60
        while time.time() < deadline and result is None:
            try:
                msg = ws.recv()
            except (socket.timeout, TimeoutError):
                # Ask again whether the page has finished loading.
                if probe_id is None:
                    probe_id = ws.send('Runtime.evaluate',
                                       {'expression': PROBE,
                                        'returnByValue': True})
                continue
            meth = msg.get('method')
            p = msg.get('params', {})
            if meth == 'Runtime.consoleAPICalled' and p.get('type') in (
                    'error', 'assert'):
                errors.append(' '.join(str(a.get('value', a.get(
                    'description', ''))) for a in p.get('args', [])))
            elif meth == 'Runtime.exceptionThrown':
                errors.append(p['exceptionDetails'].get('text', 'exception'))
            elif meth == 'Log.entryAdded' and p['entry']['level'] == 'error':
                errors.append(p['entry'].get('text', ''))
            elif meth == 'Network.requestWillBeSent':
                url = p['request']['url']
                if url != 'file://' + page:
                    requests.append(url)
            elif msg.get('id') == nav and 'error' in msg:
                errors.append('navigate: ' + json.dumps(msg['error']))
            elif probe_id and msg.get('id') == probe_id:
                probe_id = None
                value = msg.get('result', {}).get('result', {}).get('value')
                if value:
                    result = json.loads(value)
        if result is None:
            sys.stderr.write('html_check: the page did not load in time\n')
            return 2
        # Late console messages (a refused resource) come right after load.
        end = time.time() + 0.5
        try:
            while time.time() < end:
                msg = ws.recv()
                if msg.get('method') == 'Log.entryAdded' and \
                        msg['params']['entry']['level'] == 'error':
                    errors.append(msg['params']['entry'].get('text', ''))
                elif msg.get('method') == 'Runtime.consoleAPICalled' and \
                        msg['params'].get('type') == 'error':
                    errors.append('console.error')
        except (socket.timeout, TimeoutError, OSError):
            pass
        result['console_errors'] = errors
        result['requests'] = requests
        print(json.dumps(result))
        return 0
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == '__main__':
    # Chromium now and then exits at start on a busy machine: the browser,
    # not the page; a second or third start goes through.
    for attempt in range(3):
        code = main()
        if code != DID_NOT_START:
            break
    sys.exit(2 if code == DID_NOT_START else code)
