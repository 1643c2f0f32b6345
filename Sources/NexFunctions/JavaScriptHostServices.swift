/// The JavaScript side of a function's environment, evaluated once in every context before
/// the function's own script.
///
/// The source is a function expression called with an object of native functions (see
/// `JavaScriptEngine+Natives.swift`) and a flag, `synchronous` (the `v8` type: Nex 0.2's
/// semantics). Natives: `call(service, method, headers, body)` → promise of a
/// `Uint8Array` (rejected with an `Error` carrying `code` when `x-nex-hs-code` is not 200),
/// `callSync(...)` → the `Uint8Array` itself (or throws that `Error`),
/// `encode(string)` → `Uint8Array` (UTF-8), `decode(bytes)` → string, `fulfilled(id, value)`,
/// `rejected(id, error)`, `base64(text)` → `Uint8Array` and `log(level, text)`. It defines the `hostServices`, `console`,
/// `TextEncoder` and `TextDecoder` globals (with `synchronous`, `hostServices` methods return
/// their results instead of promises of them) and returns `{run, pending}`: `run(fn, id, subject,
/// payload)` calls the function and returns its result, or `pending` after arranging for
/// `fulfilled`/`rejected` to be called with the settled value of a returned promise.
enum JavaScriptHostServices {
    /// The name the prelude is evaluated under (shows in stack traces).
    static let sourceURL = "nex:host-services.js"

    static let source = #"""
    (function (nex, synchronous) {
      'use strict';
      const PENDING = Object.freeze({});
      const promiseResolve = Promise.resolve.bind(Promise);
      const promiseThen = Promise.prototype.then;

      function run(fn, id, subject, payload) {
        const result = fn(subject, payload);
        if (result === null || (typeof result !== 'object' && typeof result !== 'function') ||
            typeof result.then !== 'function') {
          return result;
        }
        promiseThen.call(promiseResolve(result),
          (value) => nex.fulfilled(id, value),
          (error) => nex.rejected(id, error));
        return PENDING;
      }

      function bytes(value, what) {
        if (value instanceof Uint8Array) return value;
        if (typeof value === 'string') return nex.encode(value);
        if (value instanceof ArrayBuffer) return new Uint8Array(value);
        if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
        throw new TypeError(what + ' must be a Uint8Array or a string');
      }
      function text(value, what) {
        if (typeof value !== 'string' || value.length === 0) {
          throw new TypeError(what + ' must be a non-empty string');
        }
        return value;
      }
      const empty = () => new Uint8Array(0);
      const json = (data) => data.length === 0 ? undefined : JSON.parse(nex.decode(data));
      // A host call, and what becomes of its reply: at once (v8) or when the promise settles.
      const call = (service, method, headers, body) =>
        (synchronous ? nex.callSync : nex.call)(service, method, headers, body || empty());
      const then = (reply, transform) => synchronous ? transform(reply) : promiseThen.call(reply, transform);
      const same = (data) => data;
      const jsonOr = (fallback) => (data) => json(data) ?? fallback;
      // A method: its argument errors become rejections when it returns promises.
      const method = (body) => synchronous ? body : async (...values) => body(...values);

      const kvKey = (key, name) => ({ 'x-keyvalue-key': text(key, 'kv.' + name + ': key') });
      const kv = Object.freeze({
        get: method((key) => call('kv', 'get', kvKey(key, 'get'))),
        set: method((key, value) => then(call('kv', 'set', kvKey(key, 'set'), bytes(value, 'kv.set: value')), json)),
        delete: method((key) => then(call('kv', 'delete', kvKey(key, 'delete')), json)),
        keys: method(() => then(call('kv', 'keys', {}), jsonOr([]))),
      });

      const objectName = (name, verb) => ({ 'x-object-name': text(name, 'objectStore.' + verb + ': name') });
      const objectStore = Object.freeze({
        get: method((name) => call('objectstore', 'get', objectName(name, 'get'))),
        put: method((name, data) =>
          then(call('objectstore', 'put', objectName(name, 'put'), bytes(data, 'objectStore.put: data')), json)),
        delete: method((name) => then(call('objectstore', 'delete', objectName(name, 'delete')), json)),
        list: method(() => then(call('objectstore', 'list', {}), jsonOr([]))),
      });

      const subjectHeader = (subject, verb) => ({ 'x-subject': text(subject, 'messaging.' + verb + ': subject') });
      const messagePayload = (payload, verb) =>
        payload === undefined ? empty() : bytes(payload, 'messaging.' + verb + ': payload');
      const messaging = Object.freeze({
        publish: method((subject, payload) =>
          then(call('messaging', 'publish', subjectHeader(subject, 'publish'), messagePayload(payload, 'publish')), json)),
        request: method((subject, payload) =>
          then(call('messaging', 'request', subjectHeader(subject, 'request'), messagePayload(payload, 'request')), same)),
        requestMany: method((subject, payload) =>
          then(call('messaging', 'requestMany', subjectHeader(subject, 'requestMany'),
                    messagePayload(payload, 'requestMany')), json)),
      });

      function httpMethod(verb, takesBody) {
        return method((url, ...rest) => {
          const body = takesBody ? rest[0] : undefined;
          const options = (takesBody ? rest[1] : rest[0]) ?? {};
          const headers = { 'x-http-url': text(url, 'http.' + verb + ': url') };
          for (const [name, value] of Object.entries(options.headers ?? {})) {
            headers['x-http-header-' + name] = String(value);
          }
          const data = body !== undefined && body !== null ? bytes(body, 'http.' + verb + ': body') : empty();
          return then(call('http', verb, headers, data), (answer) => {
            const reply = json(answer) ?? {};
            if (reply.error) {
              const error = new Error('http.' + verb + ' ' + url + ' failed: ' + reply.error);
              error.status = reply.status;
              throw error;
            }
            const response = reply.body_encoding === 'base64' ? nex.base64(reply.body ?? '') : (reply.body ?? '');
            return { status: reply.status, headers: reply.headers ?? {}, response };
          });
        });
      }
      const http = Object.freeze({
        get: httpMethod('get', false),
        post: httpMethod('post', true),
        put: httpMethod('put', true),
        patch: httpMethod('patch', true),
        delete: httpMethod('delete', false),
        head: httpMethod('head', false),
      });

      Object.defineProperty(globalThis, 'hostServices', {
        value: Object.freeze({ kv, objectStore, messaging, http }),
        enumerable: false, writable: false, configurable: false,
      });

      function show(value) {
        if (typeof value === 'string') return value;
        if (value instanceof Error) return String(value);
        try { return JSON.stringify(value) ?? String(value); } catch (e) { return String(value); }
      }
      const log = (level) => (...values) => nex.log(level, values.map(show).join(' '));
      Object.defineProperty(globalThis, 'console', {
        value: Object.freeze({ log: log('info'), info: log('info'), debug: log('debug'), warn: log('warn'), error: log('error') }),
        enumerable: false, writable: true, configurable: true,
      });

      if (typeof globalThis.TextEncoder === 'undefined') {
        globalThis.TextEncoder = class TextEncoder {
          get encoding() { return 'utf-8'; }
          encode(input = '') { return nex.encode(String(input)); }
        };
      }
      if (typeof globalThis.TextDecoder === 'undefined') {
        globalThis.TextDecoder = class TextDecoder {
          constructor(label = 'utf-8') {
            if (!/^utf-?8$/i.test(String(label))) throw new RangeError('TextDecoder supports only utf-8, not ' + label);
          }
          get encoding() { return 'utf-8'; }
          decode(input) { return input === undefined ? '' : nex.decode(bytes(input, 'TextDecoder.decode: input')); }
        };
      }

      return Object.freeze({ run, pending: PENDING });
    })
    """#
}
