/*
 * rest_accept.h: HTTP content negotiation for the REST API (RFC 9110
 * §12.5.1 Accept): which of the media types a resource can give the
 * client wants most.  Pure: no connection, no allocation.
 */
#ifndef KP_REST_ACCEPT_H
#define KP_REST_ACCEPT_H

#include <stddef.h>

/*
 * The index in types[0..n) (lower-case "type/subtype", the server's
 * preference first) the Accept header value `accept` chooses: the highest
 * quality of the most specific matching range (type/subtype over type/any
 * over any/any; any: an asterisk), ties to the lower index; parameters
 * other than q are ignored.  NULL or an empty header: 0.  -1: none is acceptable (406).
 */
int rest_accept_pick(const char *accept, const char *const *types,
    size_t n);

#endif
