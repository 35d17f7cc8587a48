// Package crmsim is a simulator of the cloud CRM integration API that
// shopbridge pulls bills from and pushes receipts to (protocol 0.1.0, SPEC
// §1/§2). It exists because the real upstream cannot be made to fail on
// demand: sync tests, benchmarks, the demo and installers run against it.
//
// # API listener
//
// Serves, under Config.Listen (URL() is the upstream URL to give the daemon):
//
//	GET  /api/v2/hello          {"system": S, "protocol": "0.1.0"}
//	GET  /api/v2/list           summaries of all bills, newest first by date (ties: higher id first)
//	     ?date=today|YYYY-MM-DD bills of that day (today in Config.Timezone); another value is 400
//	     ?number=N              the bills whose number is N; parameters combine, unknown ones are ignored
//	GET  /api/v2/bill/byid/:id  the bill's exact stored bytes, or 404
//	POST /api/v2/receipts       recorded (exact body, X-Evotor-* headers, Authorization presence,
//	                            arrival time, answer), answered 200 with an empty body
//
// Bills are kept and served as the exact bytes given (never re-marshalled).
// A list summary is derived from a bill by copying the raw text of its id,
// date, summ and number (so 4604.04 stays 4604.04 and ids beyond 2^53 keep
// every digit) and adding customername, customer.name trimmed of spaces.
// A data file's optional "list" entries, and entries given with
// PutListEntry, replace or add summaries by id, so a list entry can
// disagree with its bill as the cloud's sometimes do; a listed id without a
// bill answers 404 on bill/byid.
//
// With Config.Settle a delivered SELL receipt (FullSettlement or no method)
// drops its bill from the no-parameter and date lists, as the CRM closes a
// paid bill, and a PAYBACK lists it again; without it receipts change
// nothing.
//
// With Config.Token set every /api/v2 call needs "Authorization: Bearer
// Token", else 401. Errors carry Evotor's body {"errors":[{"code": N,
// "reason": "...", "subject": "..."}]} with the Code* constants: 1000 internal
// (500), 1001 unauthorized (401), 1002 unavailable (503), 1003 rate limited
// (429), 2001 syntax (400), 2003 unknown bill or route (404), 2005 wrong
// method (405), 2006 body too large (413).
//
// # Data
//
// A data file is {"system": S, "bills": [bill, ...], "list": [summary, ...]}
// (see ParseData). Without one the simulator serves DefaultData, built from
// the seed journal by testdata/mkdefault.py: system "new-sens-gel,
// sens-khabarovsk"; the journal's three full bills (350255, 49040, 206929)
// byte-for-byte in the journal's formatting; and for each of the 16 other
// list summaries in the journal a synthesized bill with the summary's id,
// date, summ, number and customer name (plus the trailing space the real
// upstream leaves in customer.name) and plausible products whose price times
// quantity add up to summ exactly. Generate makes N synthetic bills for
// benchmarks.
//
// # Faults
//
// SetFault makes all calls, or one kind, misbehave: refuse, hang, slow, 500,
// 429, 503, 400, cut, malformed, huge (see the Fault* constants), optionally
// flapping on and off every Fault.Flap. SetLatency adds a base latency.
// Config.MaxConcurrent (SetMaxConcurrent) answers 429 to calls beyond that
// many in progress at once, as an upstream limiting a client's concurrency
// does; Concurrency reports the peak and the refusals. SetClockOffset puts
// the simulator's clock (its answers' Date header) ahead or behind, as an
// upstream sees a PC whose clock is wrong.
//
// # Control listener
//
// When Config.Control is set, a separate listener serves JSON (Control is a
// client for it; Server has the same operations as methods):
//
//	GET    /state        State: addresses, system, fault, latency, counts
//	PUT    /fault        body Fault, e.g. {"mode":"slow","kind":"list","latency":"2s","flap":"300ms"}
//	                     or {"mode":"429","kind":"receipts","retry_after":"3s"}
//	DELETE /fault        clear the fault
//	PUT    /latency      {"latency":"50ms"}
//	PUT    /clock        {"offset":"-8760h"}: answers' Date is their arrival plus offset (SetClockOffset)
//	PUT    /max-concurrent {"max_concurrent":8}; 0 lifts the limit
//	PUT    /system       {"system":"..."}
//	PUT    /data         a whole data file: replaces system, bills and list
//	POST   /bills        raw bill JSON, keyed by its id (204)
//	PUT    /bills/{id}   any bytes as the answer of bill/byid/{id} (204)
//	DELETE /bills/{id}   drop a bill and its summary (204, 404 if unknown)
//	POST   /list         raw list entry JSON, keyed by its id: listed byte for byte instead of
//	                     the summary derived from the bill, until the bill is put again (204)
//	DELETE /list/{id}    drop that list entry: the derived summary is listed again (204, 404 if none)
//	GET    /receipts     [Receipt]: bodies are base64, headers a map
//	DELETE /receipts     forget recorded receipts (204)
//	GET    /counters     {"hello": n, "list": n, "bill": n, "receipts": n, "other": n}
//	GET    /calls        [Call]: every /api/v2 call's arrival time, kind, path and fault (the last 65,536)
//	DELETE /counters     zero the counters, the calls, the peak concurrency and refusals (204)
//
// Control errors are {"error": "text"} with status 400 or 404.
package crmsim
