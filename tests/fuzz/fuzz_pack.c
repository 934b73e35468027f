/*
 * fuzz_pack: a pack body as it arrives from a partner (PROTOCOL.md §13.1),
 * parsed by pack_parse.  Each item it reports must lie inside the body,
 * after the one before; the items written again by the pack writer must
 * parse back to the same items; a smaller item limit must refuse exactly
 * the packs over it.  The same bytes, as text, are also an announcement
 * (pack_announced), which must stay within 1..KP_PACK_ITEMS_MAX.
 */
#include <stdlib.h>
#include <string.h>

#include "pack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Items in order, each inside the body and after the one before. */
static void
s_check_items(const pack_item_t *items, size_t n, size_t size)
{
	size_t i, end = 0;

	for (i = 0; i < n; i++) {
		if (items[i].off < end || items[i].off > size ||
		    items[i].len > size - items[i].off)
			abort();
		end = items[i].off + items[i].len;
	}
}

/* The items written again: the same items parse back. */
static void
s_rewrite(const uint8_t *data, const pack_item_t *items, size_t n)
{
	pack_item_t again[KP_PACK_ITEMS_MAX];
	pack_t *p = pack_new(0x01, 0x03);
	const uint8_t *f;
	size_t i, len, m;

	if (p == NULL)
		return;
	for (i = 0; i < n; i++) {
		/* the input had at least these bytes (its varints may be
		 * longer than the writer's): everything fits */
		if (!pack_fits(p, items[i].len, KP_PACK_ITEMS_MAX) ||
		    pack_add(p, data + items[i].off, items[i].len) != 0)
			abort();
	}
	f = pack_frame(p, &len);
	if (f == NULL || f[0] != 0x03 ||
	    pack_parse(f + 1, len - 1, again, KP_PACK_ITEMS_MAX, &m) != 0 ||
	    m != n)
		abort();
	for (i = 0; i < n; i++)
		if (again[i].len != items[i].len || memcmp(f + 1 + again[i].off,
		    data + items[i].off, items[i].len) != 0)
			abort();
	pack_destroy(&p);
}

/* A limit of max items: the same answer for a pack of at most max. */
static void
s_smaller_limit(const uint8_t *data, size_t size, int rc, size_t n)
{
	pack_item_t items[KP_PACK_ITEMS_MAX];
	size_t max = 2 + size % (KP_PACK_ITEMS_MAX - 1), m;
	int rc2 = pack_parse(data, size, items, max, &m);

	if (rc != 0 && rc2 == 0)
		abort();
	if (rc == 0 && (rc2 == 0) != (n <= max))
		abort();
	if (rc2 == 0 && m != n)
		abort();
}

static void
s_announced(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	size_t v;

	if (s == NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	v = pack_announced(s);
	if (v < 1 || v > KP_PACK_ITEMS_MAX)
		abort();
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	pack_item_t items[KP_PACK_ITEMS_MAX];
	size_t n = 99;
	int rc = pack_parse(data, size, items, KP_PACK_ITEMS_MAX, &n);

	if (rc != 0 && n != 0)
		abort();
	if (rc == 0) {
		if (n < 2 || n > KP_PACK_ITEMS_MAX || size > KP_PACK_BODY_MAX)
			abort();
		s_check_items(items, n, size);
		s_rewrite(data, items, n);
	}
	s_smaller_limit(data, size, rc, n);
	if (size < 64)
		s_announced(data, size);
	return 0;
}
