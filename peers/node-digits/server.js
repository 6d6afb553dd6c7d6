// The classic Node digits demo: Node's own http module streams `data: 1`, `data: 2`, ... on
// /digits, one per interval, and node-static serves everything else from public/ (a page that
// opens an EventSource on /digits). It exists only to be measured side by side with
// sse-digits under the same load test, and keeps the demo's contract: /digits only when the
// URL is exactly that (no query parameters), no `id:` lines and so no Last-Event-ID resume,
// and `event: bye` in place of the last number.
//
// Usage: `npm install`, then `node server.js [BIND] [PORT]` (default 127.0.0.1 8083) or
// `npm start -- [BIND] [PORT]`. The env INTERVAL_MS (default 1000) and COUNT (default 4000)
// set the interval and the number at which the bye event is sent.

var http = require('http');
var nodeStatic = require('node-static');

var bind = process.argv[2] || '127.0.0.1';
var port = Number(process.argv[3]) || 8083;
var interval = Math.max(Number(process.env.INTERVAL_MS) || 1000, 1);
var count = Number(process.env.COUNT) || 4000;

var file = new nodeStatic.Server(__dirname + '/public');

var server = http.createServer(function (req, res) {
  if (req.url === '/digits') {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      'Connection': 'keep-alive'
    });
    var n = 0;
    var timer = setInterval(function () {
      n += 1;
      if (n >= count) {
        clearInterval(timer);
        res.end('event: bye\ndata: bye-bye\n\n');
      } else {
        res.write('data: ' + n + '\n\n');
      }
    }, interval);
    // The response's close (not the request's, which since Node 16 fires once the request
    // body is read) tells that the client went away.
    res.on('close', function () {
      clearInterval(timer);
    });
    return;
  }
  req.addListener('end', function () {
    file.serve(req, res);
  }).resume();
});

// The same accept backlog as the other peers (the kernel caps it at net.core.somaxconn).
server.listen({ host: bind, port: port, backlog: 4096 }, function () {
  console.log('node-digits on http://' + bind + ':' + port + '/digits');
});
