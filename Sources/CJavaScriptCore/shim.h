#ifndef NEX_CJAVASCRIPTCORE_SHIM_H
#define NEX_CJAVASCRIPTCORE_SHIM_H

#include <JavaScriptCore/JavaScript.h>
#include <stdbool.h>

// JavaScriptCore's execution time limit is exported by the library but declared only in
// WebKit's private JSContextRefPrivate.h, which Debian does not ship: declared here.
typedef bool (*NexJSShouldTerminateCallback)(JSContextRef ctx, void *context);
void JSContextGroupSetExecutionTimeLimit(JSContextGroupRef group, double limit,
                                         NexJSShouldTerminateCallback callback, void *context);
void JSContextGroupClearExecutionTimeLimit(JSContextGroupRef group);

// JavaScriptCore's options, from its public GLib API (<jsc/jsc.h>, which needs GLib's headers;
// gboolean is an int). Set before the first context group is created. Nex sets
// "usePollingTraps": with the default signal-based traps the watchdog above does not stop a
// loop that has been compiled by the optimizing JITs (a function called a few thousand times).
int jsc_options_set_boolean(const char *option, int value);
int jsc_options_get_boolean(const char *option, int *value);

#endif
