import CJavaScriptCore

/// Conversions between Swift values and JavaScriptCore values.
///
/// Every function here must be called on the thread that owns the context it is given.
enum JavaScriptValue {
    /// Runs `body` with a JavaScriptCore string holding `text` (UTF-16, so embedded NULs survive).
    static func withString<Result>(_ text: String, _ body: (JSStringRef) -> Result) -> Result {
        let units = Array(text.utf16)
        let string = units.withUnsafeBufferPointer { JSStringCreateWithCharacters($0.baseAddress, $0.count) }!
        defer { JSStringRelease(string) }
        return body(string)
    }

    /// The Swift string of a JavaScriptCore string; lone surrogates become U+FFFD.
    static func string(_ string: JSStringRef) -> String {
        let count = JSStringGetLength(string)
        guard count > 0, let characters = JSStringGetCharactersPtr(string) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: characters, count: count), as: UTF16.self)
    }

    /// A JavaScript string value.
    static func make(_ context: JSContextRef, string text: String) -> JSValueRef {
        withString(text) { JSValueMakeString(context, $0) }
    }

    /// `String(value)`, or `nil` when converting throws (an object whose `toString` throws).
    static func string(_ context: JSContextRef, _ value: JSValueRef) -> String? {
        var exception: JSValueRef?
        guard let copy = JSValueToStringCopy(context, value, &exception), exception == nil else { return nil }
        defer { JSStringRelease(copy) }
        return string(copy)
    }

    /// `object[name]`, or `nil` when the property is missing or its getter throws.
    static func property(_ context: JSContextRef, _ value: JSValueRef, _ name: String) -> JSValueRef? {
        guard JSValueIsObject(context, value), let object = JSValueToObject(context, value, nil) else { return nil }
        var exception: JSValueRef?
        let property = withString(name) { JSObjectGetProperty(context, object, $0, &exception) }
        guard exception == nil, let property, !JSValueIsUndefined(context, property) else { return nil }
        return property
    }

    /// Sets `object[name] = value`.
    static func set(_ context: JSContextRef, _ object: JSObjectRef, _ name: String, _ value: JSValueRef) {
        withString(name) { JSObjectSetProperty(context, object, $0, value, JSPropertyAttributes(kJSPropertyAttributeNone), nil) }
    }

    /// A new `Uint8Array` holding a copy of `bytes`.
    static func make(_ context: JSContextRef, bytes: [UInt8]) -> JSValueRef? {
        var exception: JSValueRef?
        guard let array = JSObjectMakeTypedArray(context, kJSTypedArrayTypeUint8Array, bytes.count, &exception),
              exception == nil
        else { return nil }
        if !bytes.isEmpty, let storage = JSObjectGetTypedArrayBytesPtr(context, array, nil) {
            let offset = JSObjectGetTypedArrayByteOffset(context, array, nil)
            bytes.withUnsafeBytes { (storage + offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        return array
    }

    /// The bytes of a typed array (any element type: its bytes as they are in memory) or an
    /// `ArrayBuffer`; `nil` when `value` is neither.
    static func bytes(_ context: JSContextRef, _ value: JSValueRef) -> [UInt8]? {
        guard JSValueIsObject(context, value), let object = JSValueToObject(context, value, nil) else { return nil }
        let type = JSValueGetTypedArrayType(context, value, nil)
        switch type {
        case kJSTypedArrayTypeNone:
            return nil
        case kJSTypedArrayTypeArrayBuffer:
            let count = JSObjectGetArrayBufferByteLength(context, object, nil)
            guard count > 0, let storage = JSObjectGetArrayBufferBytesPtr(context, object, nil) else { return [] }
            return Array(UnsafeRawBufferPointer(start: storage, count: count))
        default:
            let count = JSObjectGetTypedArrayByteLength(context, object, nil)
            // The pointer is the start of the whole buffer; a view (`subarray`) starts at its offset.
            guard count > 0, let storage = JSObjectGetTypedArrayBytesPtr(context, object, nil) else { return [] }
            let offset = JSObjectGetTypedArrayByteOffset(context, object, nil)
            return Array(UnsafeRawBufferPointer(start: storage + offset, count: count))
        }
    }

    /// A new `Error` with `message`.
    static func makeError(_ context: JSContextRef, _ message: String) -> JSObjectRef {
        var argument: JSValueRef? = make(context, string: message)
        return JSObjectMakeError(context, 1, &argument, nil)
    }

    /// A native function named `name` that calls `callback`.
    static func makeFunction(_ context: JSContextRef, _ name: String,
                             _ callback: JSObjectCallAsFunctionCallback) -> JSObjectRef {
        withString(name) { JSObjectMakeFunctionWithCallback(context, $0, callback) }
    }

    /// Calls `function(arguments...)` with `this` undefined; the exception, if any, in `exception`.
    @discardableResult
    static func call(_ context: JSContextRef, _ function: JSObjectRef, _ arguments: [JSValueRef?],
                     exception: inout JSValueRef?) -> JSValueRef? {
        arguments.withUnsafeBufferPointer {
            JSObjectCallAsFunction(context, function, nil, $0.count, $0.baseAddress, &exception)
        }
    }

    /// `typeof value` as a noun for error messages ("a number", "undefined", "an object").
    static func kind(_ context: JSContextRef, _ value: JSValueRef?) -> String {
        guard let value else { return "nothing" }
        switch JSValueGetType(context, value) {
        case kJSTypeUndefined: return "undefined"
        case kJSTypeNull: return "null"
        case kJSTypeBoolean: return "a boolean"
        case kJSTypeNumber: return "a number"
        case kJSTypeString: return "a string"
        case kJSTypeSymbol: return "a symbol"
        default: return "an object"
        }
    }
}
