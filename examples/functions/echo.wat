;; echo.wat — a Nex wasm function that replies with its payload.
;;
;; Runtime contract (WASI preview 1): the trigger payload is stdin, the whole of stdout is
;; the reply. This module reads stdin in 64 KiB chunks and writes each chunk to stdout until
;; end of input, so any payload size works; on a WASI error it exits with code 1.
;;
;; Build:  wat2wasm echo.wat -o echo.wasm
;; Deploy: nexctl devrun --type wasm --trigger 'echo.>' echo.wasm
;; Try:    nats request echo.hi hello   (replies "hello")
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))

  ;; Layout: 0 iovec {buf, len}; 8 nread/nwritten; 1024.. a 64 KiB buffer.
  (memory (export "memory") 2)

  ;; Writes memory[ptr, ptr+len) to stdout, looping over partial writes.
  (func $write_all (param $ptr i32) (param $len i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (i32.store (i32.const 0) (local.get $ptr))
        (i32.store (i32.const 4) (local.get $len))
        (if (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.load (i32.const 8))))
        (local.set $len (i32.sub (local.get $len) (i32.load (i32.const 8))))
        (br $more))))

  (func (export "_start")
    (local $n i32)
    (block $eof
      (loop $more
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 65536))
        (if (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8))
          (then (call $proc_exit (i32.const 1))))
        (local.set $n (i32.load (i32.const 8)))
        (br_if $eof (i32.eqz (local.get $n)))
        (call $write_all (i32.const 1024) (local.get $n))
        (br $more)))))
