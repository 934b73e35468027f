/*
 * flights.c: the events in flight on one link, found by event id (see
 * flights.h).
 */
#include <string.h>

#include "flights.h"

_Static_assert(FLIGHTS_SLOTS >= 2 * FLIGHTS_MAX,
    "the index keeps at least half of its slots free");
_Static_assert(FLIGHTS_MAX < UINT16_MAX, "at[] holds index + 1 in 16 bits");

static size_t
s_home(const uint8_t id[16])
{
	uint64_t v;

	memcpy(&v, id + 8, sizeof(v));
	return (size_t)((v * 0x9E3779B97F4A7C15ULL) >>
	    (64 - FLIGHTS_SLOTS_LOG2));
}

/* The slot holding flight id, or the free slot that ends its probe. */
static size_t
s_slot(const flights_t *f, const uint8_t id[16])
{
	size_t s = s_home(id);

	while (f->at[s] != 0 && memcmp(f->fl[f->at[s] - 1].id, id, 16) != 0)
		s = (s + 1) & (FLIGHTS_SLOTS - 1);
	return s;
}

ssize_t
flights_find(const flights_t *f, const uint8_t id[16])
{
	size_t s = s_slot(f, id);

	return f->at[s] != 0 ? (ssize_t)f->at[s] - 1 : -1;
}

flight_t *
flights_add(flights_t *f, const uint8_t id[16])
{
	flight_t *fl;

	if (f->n >= FLIGHTS_MAX)
		return NULL;
	fl = &f->fl[f->n];
	memset(fl, 0, sizeof(*fl));
	memcpy(fl->id, id, 16);
	f->at[s_slot(f, id)] = (uint16_t)(++f->n);
	return fl;
}

/*
 * Empty slot s, then move later entries of its probe run back into the
 * hole (deletion without tombstones, Knuth's algorithm R), so that every
 * probe still ends at the first free slot.
 */
static void
s_unslot(flights_t *f, size_t s)
{
	size_t j = s, home;

	f->at[s] = 0;
	for (;;) {
		j = (j + 1) & (FLIGHTS_SLOTS - 1);
		if (f->at[j] == 0)
			return;
		home = s_home(f->fl[f->at[j] - 1].id);
		/* it stays if its home lies cyclically in (s, j] */
		if (s <= j ? (s < home && home <= j) : (s < home || home <= j))
			continue;
		f->at[s] = f->at[j];
		f->at[j] = 0;
		s = j;
	}
}

void
flights_forget(flights_t *f, size_t i)
{
	size_t last = f->n - 1;

	s_unslot(f, s_slot(f, f->fl[i].id));
	if (i != last) {
		f->fl[i] = f->fl[last];
		f->at[s_slot(f, f->fl[i].id)] = (uint16_t)(i + 1);
	}
	f->n--;
}

void
flights_clear(flights_t *f)
{
	f->n = 0;
	memset(f->at, 0, sizeof(f->at));
}
