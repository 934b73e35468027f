/*
 * fuzz_receipt: a receipt as it arrives from a partner, verified by the
 * municipality that sent the event (receipt_verify), and searched for a
 * riding tree head.
 */
#include <stdlib.h>

#include "envelope.h"
#include "fuzzcommon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static fz_org_t lp;
	uint8_t *head = NULL;
	size_t head_len = 0;
	receipt_t r;
	kp_err_t e;

	if (lp.dir == NULL)
		fz_org_load(FZ_OIN_LEERPLICHT, &lp);
	(void)receipt_verify(lp.dir, data, size, &r, &e);
	if (envelope_extract_head(data, size, true, &head, &head_len) == 0)
		free(head);
	return 0;
}
