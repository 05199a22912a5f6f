/* signal_sio.c -- Socket.IO protocol v5 packets and the mapping between
 * events and room messages (see signal_sio.h). */
#include "signal/signal_sio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signal/signal_http.h"

#define ACK_DIGITS_MAX 15

int signal_sio_parse(const char *text, size_t len, int max_depth, struct signal_sio_pkt *p, const char **why)
{
	size_t i = 1, n;
	json_error_t jerr;

	memset(p, 0, sizeof(*p));
	p->ack = -1;
	strcpy(p->nsp, "/");
	if (len == 0 || text[0] < '0' || text[0] > '6') {
		*why = "unknown packet type";
		return -1;
	}
	p->type = (enum signal_sio_type)(text[0] - '0');
	if (p->type == SIGNAL_SIO_BINARY_EVENT || p->type == SIGNAL_SIO_BINARY_ACK) {
		while (i < len && text[i] >= '0' && text[i] <= '9')
			i++;
		if (i == 1 || i >= len || text[i] != '-') {
			*why = "malformed attachment count";
			return -1;
		}
		i++;
	}
	if (i < len && text[i] == '/') {
		const char *comma = memchr(text + i, ',', len - i);

		n = comma != NULL ? (size_t)(comma - (text + i)) : len - i;
		if (n > SIGNAL_SIO_NSP_MAX || memchr(text + i, '\0', n) != NULL) {
			*why = "namespace too long";
			return -1;
		}
		memcpy(p->nsp, text + i, n);
		p->nsp[n] = '\0';
		i += n + (comma != NULL ? 1 : 0);
	}
	for (n = 0; i < len && text[i] >= '0' && text[i] <= '9'; i++, n++) {
		if (n == ACK_DIGITS_MAX) {
			*why = "ack id too long";
			return -1;
		}
		p->ack = (p->ack < 0 ? 0 : p->ack * 10) + (text[i] - '0');
	}
	if (i == len || p->type == SIGNAL_SIO_BINARY_EVENT || p->type == SIGNAL_SIO_BINARY_ACK)
		return 0;
	if (signal_json_too_deep(text + i, len - i, max_depth)) {
		*why = "too deep";
		return -1;
	}
	if ((p->data = json_loadb(text + i, len - i, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		*why = "invalid JSON";
		return -1;
	}
	return 0;
}

char *signal_sio_encode(enum signal_sio_type type, const char *nsp, long long ack, const json_t *data)
{
	char *json = NULL, *out;
	char acks[24] = "";
	int main_nsp = nsp == NULL || strcmp(nsp, "/") == 0;
	size_t need;

	if (data != NULL && (json = json_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		return NULL;
	if (ack >= 0)
		snprintf(acks, sizeof(acks), "%lld", ack);
	need = 2 + (main_nsp ? 0 : strlen(nsp) + 1) + strlen(acks) + (json != NULL ? strlen(json) : 0) + 1;
	if ((out = malloc(need)) != NULL)
		snprintf(out, need, "4%d%s%s%s%s", (int)type, main_nsp ? "" : nsp, main_nsp ? "" : ",", acks,
			 json != NULL ? json : "");
	free(json);
	return out;
}

json_t *signal_sio_to_room(const json_t *args, const char **why)
{
	json_t *name = json_array_get(args, 0), *first = json_array_get(args, 1), *msg, *rest, *to;
	size_t i;

	*why = "missing event name";
	if (!json_is_array(args) || !json_is_string(name) || json_string_length(name) == 0 ||
	    json_string_length(name) > SIGNAL_SIO_EVENT_MAX ||
	    strlen(json_string_value(name)) != json_string_length(name))
		return NULL;
	*why = "server error";
	if (json_array_size(args) == 2 && json_is_object(first) && json_object_get(first, "type") == NULL &&
	    json_object_get(first, "args") == NULL) {
		if ((msg = json_copy((json_t *)first)) == NULL)
			return NULL;
		json_object_del(msg, "from");
		if (json_object_set(msg, "type", name) < 0) {
			json_decref(msg);
			return NULL;
		}
		return msg;
	}
	if ((rest = json_array()) == NULL)
		return NULL;
	for (i = 1; i < json_array_size(args); i++)
		json_array_append(rest, json_array_get(args, i));
	msg = json_pack("{s:O, s:o}", "type", name, "args", rest);
	if (msg != NULL && json_is_object(first) && json_is_string((to = json_object_get(first, "to"))))
		json_object_set(msg, "to", to);
	return msg;
}

json_t *signal_sio_from_room(const json_t *msg)
{
	json_t *type = json_object_get(msg, "type"), *args = json_object_get(msg, "args"),
	       *from = json_object_get(msg, "from"), *ev, *obj;
	size_t i;

	if (!json_is_string(type) || (ev = json_array()) == NULL)
		return NULL;
	json_array_append(ev, type);
	if (json_is_array(args)) {
		for (i = 0; i < json_array_size(args); i++) {
			json_t *a = json_array_get(args, i);

			if (i == 0 && json_is_object(a) && json_is_string(from)) {
				obj = json_copy(a);
				if (obj == NULL || json_object_set(obj, "from", from) < 0 ||
				    json_array_append_new(ev, obj) < 0) {
					json_decref(ev);
					return NULL;
				}
			} else {
				json_array_append(ev, a);
			}
		}
		return ev;
	}
	if ((obj = json_copy((json_t *)msg)) == NULL || json_object_del(obj, "type") < 0 ||
	    json_array_append_new(ev, obj) < 0) {
		json_decref(ev);
		return NULL;
	}
	return ev;
}
