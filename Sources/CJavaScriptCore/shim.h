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

#endif
