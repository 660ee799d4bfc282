// libxml2 from Debian (libxml2-dev): the HTML push parser in SAX mode for
// the crawler's link extraction, and the XML reader for sitemaps.
#ifndef SWIFT_GREEN_CLIBXML2_H
#define SWIFT_GREEN_CLIBXML2_H

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/xmlreader.h>
#include <libxml/xmlerror.h>

#endif
