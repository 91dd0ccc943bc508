/**
 * A "pod" for the test fabric: an HTTP server on port 80 that answers every
 * request with its own name and the address the request came from (the
 * gateway's masquerade address, which tells the test which gateway carried it).
 *
 * Usage (inside the pod's namespace):
 *   deno run --allow-net=0.0.0.0:80[,[IPV6]:80] pod_server.ts NAME [MARKER [IPV6]]
 * MARKER is ignored; it puts the test run's directory on the command line.
 * With IPV6 (the pod's IPv6 address, on a dual-stack fabric) it also serves
 * on [IPV6]:80, a socket of its own: a `[::]` socket would take IPv4 too, and
 * report IPv4 peers as `::ffff:A.B.C.D`.
 *
 * @module
 */

if (import.meta.main) {
  const [name = "pod", _marker, ipv6] = Deno.args;
  const handler: Deno.ServeHandler<Deno.NetAddr> = (_req, info) => {
    const from = info.remoteAddr.hostname;
    return new Response(`${name} ${from}\n`, { headers: { connection: "close" } });
  };
  const hosts = ["0.0.0.0", ...(ipv6 ? [ipv6] : [])];
  let listening = 0;
  for (const hostname of hosts) {
    Deno.serve({
      hostname,
      port: 80,
      onListen: () => {
        if (++listening === hosts.length) console.log("listening");
      },
    }, handler);
  }
}
