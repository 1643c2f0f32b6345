;; kv-counter.wat — a Nex wasm function that counts its calls in the key-value host service.
;;
;; Each call reads key "count" with nex.call("kv", "get", {"x-keyvalue-key":"count"}) (a
;; 404 means "not set yet": 0), adds one, stores it back with nex.call("kv", "set", ...,
;; body = the decimal digits) and replies with the new count as text, e.g. "3".
;; A failed get or set writes the host's message to stderr and exits with code 1 (get)
;; or 2 (set); the invocation then fails with "exited with code N; stderr: ...".
;;
;; The `nex` import module (see docs/functions.md):
;;   call(service_ptr, service_len, method_ptr, method_len,
;;        headers_ptr, headers_len, body_ptr, body_len) -> code (>= 0) or -1/-2/-3
;;   result_len() -> i32, result_read(ptr, len) -> copied,
;;   result_message_len() -> i32, result_message_read(ptr, len) -> copied
;;
;; Build:  wat2wasm kv-counter.wat -o kv-counter.wasm
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "nex" "call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "nex" "result_len" (func $result_len (result i32)))
  (import "nex" "result_read" (func $result_read (param i32 i32) (result i32)))
  (import "nex" "result_message_read" (func $result_message_read (param i32 i32) (result i32)))

  ;; Layout: 0 iovec; 8 nwritten; 16 "kv"; 24 "get"; 32 "set"; 64 the headers (26 bytes);
  ;; 256.. the value read back (up to 32 bytes); 512..544 the new count's digits (right-aligned);
  ;; 1024.. a host message (up to 1 KiB).
  (memory (export "memory") 1)
  (data (i32.const 16) "kv")
  (data (i32.const 24) "get")
  (data (i32.const 32) "set")
  (data (i32.const 64) "{\"x-keyvalue-key\":\"count\"}")

  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))

  ;; Writes the host's message to stderr and exits with `code`.
  (func $fail (param $code i32)
    (call $write (i32.const 2) (i32.const 1024)
      (call $result_message_read (i32.const 1024) (i32.const 1024)))
    (call $proc_exit (local.get $code)))

  (func (export "_start")
    (local $status i32) (local $n i32) (local $i i32) (local $c i32)
    (local $count i32) (local $pos i32)
    ;; get
    (local.set $status
      (call $call (i32.const 16) (i32.const 2) (i32.const 24) (i32.const 3)
                  (i32.const 64) (i32.const 26) (i32.const 0) (i32.const 0)))
    (if (i32.eq (local.get $status) (i32.const 200))
      (then
        (local.set $n (call $result_read (i32.const 256) (i32.const 32)))
        (block $end
          (loop $digit
            (br_if $end (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $c (i32.load8_u (i32.add (i32.const 256) (local.get $i))))
            (br_if $end (i32.lt_u (local.get $c) (i32.const 48)))
            (br_if $end (i32.gt_u (local.get $c) (i32.const 57)))
            (local.set $count
              (i32.add (i32.mul (local.get $count) (i32.const 10)) (i32.sub (local.get $c) (i32.const 48))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $digit))))
      (else
        (if (i32.ne (local.get $status) (i32.const 404))
          (then (call $fail (i32.const 1))))))
    (local.set $count (i32.add (local.get $count) (i32.const 1)))
    ;; the digits, right-aligned to 544
    (local.set $pos (i32.const 544))
    (local.set $n (local.get $count))
    (loop $digits
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (i32.store8 (local.get $pos) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digits (local.get $n)))
    ;; set
    (local.set $status
      (call $call (i32.const 16) (i32.const 2) (i32.const 32) (i32.const 3)
                  (i32.const 64) (i32.const 26)
                  (local.get $pos) (i32.sub (i32.const 544) (local.get $pos))))
    (if (i32.ne (local.get $status) (i32.const 200))
      (then (call $fail (i32.const 2))))
    (call $write (i32.const 1) (local.get $pos) (i32.sub (i32.const 544) (local.get $pos)))))
