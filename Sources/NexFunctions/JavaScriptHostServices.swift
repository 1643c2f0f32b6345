/// The JavaScript side of a function's environment, evaluated once in every context before
/// the function's own script.
///
/// The source is a function expression called with an object of native functions (see
/// `JavaScriptEngine+Natives.swift`): `call(service, method, headers, body)` → promise of a
/// `Uint8Array` (rejected with an `Error` carrying `code` when `x-nex-hs-code` is not 200),
/// `encode(string)` → `Uint8Array` (UTF-8), `decode(bytes)` → string, `fulfilled(id, value)`,
/// `rejected(id, error)`, `base64(text)` → `Uint8Array` and `log(level, text)`. It defines the `hostServices`, `console`,
/// `TextEncoder` and `TextDecoder` globals and returns `{run, pending}`: `run(fn, id, subject,
/// payload)` calls the function and returns its result, or `pending` after arranging for
/// `fulfilled`/`rejected` to be called with the settled value of a returned promise.
enum JavaScriptHostServices {
    /// The name the prelude is evaluated under (shows in stack traces).
    static let sourceURL = "nex:host-services.js"

    static let source = #"""
    (function (nex) {
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
      const call = (service, method, headers, body) => nex.call(service, method, headers, body || empty());

      const kvKey = (key, method) => ({ 'x-keyvalue-key': text(key, 'kv.' + method + ': key') });
      const kv = Object.freeze({
        get: async (key) => call('kv', 'get', kvKey(key, 'get')),
        set: async (key, value) => json(await call('kv', 'set', kvKey(key, 'set'), bytes(value, 'kv.set: value'))),
        delete: async (key) => json(await call('kv', 'delete', kvKey(key, 'delete'))),
        keys: async () => json(await call('kv', 'keys', {})) ?? [],
      });

      const objectName = (name, method) => ({ 'x-object-name': text(name, 'objectStore.' + method + ': name') });
      const objectStore = Object.freeze({
        get: async (name) => call('objectstore', 'get', objectName(name, 'get')),
        put: async (name, data) =>
          json(await call('objectstore', 'put', objectName(name, 'put'), bytes(data, 'objectStore.put: data'))),
        delete: async (name) => json(await call('objectstore', 'delete', objectName(name, 'delete'))),
        list: async () => json(await call('objectstore', 'list', {})) ?? [],
      });

      const subjectHeader = (subject, method) => ({ 'x-subject': text(subject, 'messaging.' + method + ': subject') });
      const messagePayload = (payload, method) =>
        payload === undefined ? empty() : bytes(payload, 'messaging.' + method + ': payload');
      const messaging = Object.freeze({
        publish: async (subject, payload) =>
          json(await call('messaging', 'publish', subjectHeader(subject, 'publish'), messagePayload(payload, 'publish'))),
        request: async (subject, payload) =>
          call('messaging', 'request', subjectHeader(subject, 'request'), messagePayload(payload, 'request')),
        requestMany: async (subject, payload) =>
          json(await call('messaging', 'requestMany', subjectHeader(subject, 'requestMany'),
                          messagePayload(payload, 'requestMany'))),
      });

      function httpMethod(method, takesBody) {
        return async (url, ...rest) => {
          const body = takesBody ? rest[0] : undefined;
          const options = (takesBody ? rest[1] : rest[0]) ?? {};
          const headers = { 'x-http-url': text(url, 'http.' + method + ': url') };
          for (const [name, value] of Object.entries(options.headers ?? {})) {
            headers['x-http-header-' + name] = String(value);
          }
          const data = body !== undefined && body !== null ? bytes(body, 'http.' + method + ': body') : empty();
          const reply = json(await call('http', method, headers, data)) ?? {};
          if (reply.error) {
            const error = new Error('http.' + method + ' ' + url + ' failed: ' + reply.error);
            error.status = reply.status;
            throw error;
          }
          const response = reply.body_encoding === 'base64' ? nex.base64(reply.body ?? '') : (reply.body ?? '');
          return { status: reply.status, headers: reply.headers ?? {}, response };
        };
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
