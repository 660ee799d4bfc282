// Google's gumbo HTML5 parser from Debian (libgumbo-dev), for the
// crawler's link extraction.
#ifndef SWIFT_GREEN_CGUMBO_H
#define SWIFT_GREEN_CGUMBO_H

#include <gumbo.h>

static inline const GumboOptions *green_gumbo_default_options(void) {
    return &kGumboDefaultOptions;
}

#endif
