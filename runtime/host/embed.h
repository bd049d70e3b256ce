/* embed.h: the lualib/ modules compiled into the binary (see tools/embed.cmake). */
#ifndef PACER_EMBED_H
#define PACER_EMBED_H
#include <stddef.h>

struct embedded_module {
  const char *name;      /* module name, e.g. "pacer.client" */
  const char *chunkname; /* "@lualib/pacer/client.lua", so tracebacks show real paths */
  const char *data;
  size_t len;
};

/* Terminated by an entry whose name is NULL. */
extern const struct embedded_module pacer_embedded[];
#endif
