/* Reports the C compiler's view of every ABI struct, for the layout test. */
#ifndef NORTHSTAR_LAYOUT_PROBE_H
#define NORTHSTAR_LAYOUT_PROBE_H
#include <stddef.h>

typedef struct ns_layout_entry {
    const char *type;  /* the struct's name */
    const char *field; /* a field's name, or "" for the struct itself */
    size_t offset;     /* the field's offset (0 for the struct) */
    size_t size;       /* the field's size, or the struct's */
} ns_layout_entry;

size_t ns_layout_count(void);
ns_layout_entry ns_layout_at(size_t index);

#endif
