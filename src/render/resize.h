/*
 * resize.h - the viewport arithmetic of render_resize, shared with callers that need the
 * output size before rendering (e.g. to answer HEAD or to size a thumbnail grid).
 */
#ifndef RS_RENDER_RESIZE_H
#define RS_RENDER_RESIZE_H

#include "render.h"

/* Output size of a cols x rows image fitted into vw x vh (0 = unbounded): aspect kept,
 * never enlarged, each side at least 1. */
void render_fit(uint32_t cols, uint32_t rows, uint32_t vw, uint32_t vh, uint32_t *ow, uint32_t *oh);

#endif
