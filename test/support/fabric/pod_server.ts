/**
 * A "pod" for the test fabric: an HTTP server on port 80 that answers every
 * request with its own name and the address the request came from (the
 * gateway's masquerade address, which tells the test which gateway carried it).
 *
 * Usage (inside the pod's namespace): deno run --allow-net=0.0.0.0:80 pod_server.ts NAME [MARKER]
 * MARKER is ignored; it puts the test run's directory on the command line.
 *
 * @module
 */

if (import.meta.main) {
  const name = Deno.args[0] ?? "pod";
  Deno.serve({
    hostname: "0.0.0.0",
    port: 80,
    onListen: () => console.log("listening"),
  }, (_req, info) => {
    const from = (info.remoteAddr as Deno.NetAddr).hostname;
    return new Response(`${name} ${from}\n`, { headers: { connection: "close" } });
  });
}
