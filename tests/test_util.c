/*
 * test_util.c: lib/util.c's ISO 8601 times: what exists parses, what does
 * not (2027-02-30, second 60, hour 24, month 13) is refused, never rolled
 * over into the next day or month; an event id as text and back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "common.h"
#include "reportfig.h"
#include "util.h"

TestSuite(util, .init = test_init);

static uint64_t
s_ms(const char *text)
{
	uint64_t ms = 0;

	cr_assert_eq(kp_time_parse(text, &ms), 0, "%s refused", text);
	return ms;
}

Test(util, times_that_exist_parse)
{
	char back[32];

	cr_assert_eq(s_ms("1970-01-01T00:00:00Z"), 0);
	cr_assert_eq(s_ms("2027-01-31T12:00:00.123Z"), 1801396800123ull);
	kp_time_format(s_ms("2028-02-29T23:59:59.999Z"), back);
	cr_assert_str_eq(back, "2028-02-29T23:59:59.999Z");
	kp_time_format(s_ms("2000-02-29T00:00:00Z"), back);
	cr_assert_str_eq(back, "2000-02-29T00:00:00.000Z");
	kp_time_format(s_ms("2027-12-31T23:59:59Z"), back);
	cr_assert_str_eq(back, "2027-12-31T23:59:59.000Z");
}

Test(util, impossible_times_are_refused)
{
	static const char *const bad[] = {
		"2027-02-30T00:00:00Z",   /* no 30 February */
		"2027-02-29T00:00:00Z",   /* not a leap year */
		"2100-02-29T00:00:00Z",   /* nor is 2100 */
		"2027-04-31T00:00:00Z",
		"2027-13-01T00:00:00Z",
		"2027-00-10T00:00:00Z",
		"2027-01-00T00:00:00Z",
		"2027-01-31T24:00:00Z",
		"2027-01-31T23:60:00Z",
		"2027-01-31T23:59:60Z",
		"2027-01-31T23:59:61Z",
		"2027-1-31T00:00:00Z",    /* not the fixed form */
		"2027-01-31 00:00:00Z",
		" 2027-01-31T00:00:00Z",
		"2027-01-31T00:00:00",    /* no zone */
		"2027-01-31T00:00:00+01:00",
		"2027-01-31T00:00:00.12Z",
		"2027-01-31T00:00:00.1234Z",
		"1969-12-31T23:59:59Z",
		"",
	};
	uint64_t ms = 42;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(kp_time_parse(bad[i], &ms), -1, "'%s' accepted",
		    bad[i]);
	cr_assert_eq(ms, 42, "nothing written on refusal");
	cr_assert_eq(kp_time_parse(NULL, &ms), -1);
}

/* A partner name that a spreadsheet would run as a formula (it comes from
 * a certificate) is written as text; numbers keep their sign. */
Test(util, report_csv_neutralises_formulas)
{
	json_t *o = json_loads("{\"routes\":[{\"route\":\"ROUTE_HALT\","
	    "\"partners\":[{\"partner_oin\":\"00000001002345678000\","
	    "\"partner_name\":\"=HYPERLINK(\\\"http://x\\\")\"},"
	    "{\"partner_oin\":\"00000001003456789000\","
	    "\"partner_name\":\"-2+3\"}]}]}", 0, NULL);
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	cr_assert_not_null(o);
	cr_assert_not_null(f = open_memstream(&buf, &len));
	reportfig_csv(f, o, NULL);
	fclose(f);
	cr_expect(strstr(buf, "\"'=HYPERLINK(\"\"http://x\"\")\"") != NULL,
	    "%s", buf);
	cr_expect(strstr(buf, "\"'-2+3\"") != NULL, "%s", buf);
	cr_expect(strstr(buf, ",\"=") == NULL, "%s", buf);
	free(buf);
	json_decref(o);
}

/* An event id as text: RFC 9562's 8-4-4-4-12 lower-case hex, and back. */
Test(util, event_ids_format_and_parse_back)
{
	static const uint8_t id[16] = { 0x01, 0x90, 0xe7, 0xd4, 0x8f, 0x44,
	    0x7c, 0x9a, 0xb3, 0xc4, 0x2f, 0x1d, 0x7c, 0x6f, 0x0e, 0xff };
	uint8_t back[16], fresh[16];
	char text[KP_UUID_TEXT_LEN + 1];
	int i;

	memset(text, 'x', sizeof(text));
	kp_uuid_format(id, text);
	cr_expect_str_eq(text, "0190e7d4-8f44-7c9a-b3c4-2f1d7c6f0eff");
	cr_assert_eq(kp_uuid_parse(text, back), 0);
	cr_expect_eq(memcmp(back, id, 16), 0);
	for (i = 0; i < 100; i++) {
		kp_uuid_new(fresh);
		kp_uuid_format(fresh, text);
		cr_assert_eq(strlen(text), KP_UUID_TEXT_LEN);
		cr_assert_eq(kp_uuid_parse(text, back), 0, "%s", text);
		cr_assert_eq(memcmp(back, fresh, 16), 0, "%s", text);
	}
}
