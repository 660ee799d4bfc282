// swift-green: which analysis tool this C code is compiled for (private).
#ifndef SWIFT_GREEN_TOOLS_H
#define SWIFT_GREEN_TOOLS_H

#include "green_switch.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if __has_feature(address_sanitizer) || defined(__SANITIZE_ADDRESS__)
#define GREEN_ASAN 1
#else
#define GREEN_ASAN 0
#endif
#if __has_feature(thread_sanitizer) || defined(__SANITIZE_THREAD__)
#define GREEN_TSAN 1
#else
#define GREEN_TSAN 0
#endif

/// Writes the first frame of `ctx` (assembly kind) at the top of
/// ctx->stack and points ctx->sp at it (context.c).
int green_context_first_frame(green_context *ctx, green_entry_fn entry, void *arg);

#if defined(GREEN_ANNOTATE_SWITCHES)
/// A context for the thread's own stack was made (green_context_init_current).
void green_tools_init_current(green_context *ctx);
/// A context was prepared to run on its green_stack (green_context_init).
void green_tools_init(green_context *ctx);
void green_tools_destroy(green_context *ctx);
/// First thing a new context runs on its stack.
void green_tools_first_entry(green_context *ctx);
#endif

#endif
