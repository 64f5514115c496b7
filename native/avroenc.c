/*
 * twin._avroenc: a schema-driven Avro binary encoder for Python dicts.
 *
 * Why C and not fastavro: fastavro's schemaless_writer walks the parsed schema dicts for every
 * record (~12 us for a telemetry event); the producer's budget beyond a bare produce() is ~2 us.
 * Here the schema is compiled once (by twin.codec, in Python) into a flat "plan" of nodes, turned
 * into C structs below, and each record is written straight from the dict into one buffer.
 *
 * Plan format (a list of tuples; children are indices into the list; node 0 is the root):
 *   ("null",) ("boolean",) ("int",) ("long",) ("float",) ("double",) ("bytes",) ("string",)
 *   ("fixed", name, size)          ("enum", name, (symbol, ...))
 *   ("array", item)                ("map", value)
 *   ("record", name, ((field_name, type, missing_bytes_or_None), ...))
 *   ("union", (branch, ...))
 *   ("logical", base, prepare, schema, fast)   fast: "int" | "str" | ""
 * A logical node calls prepare(datum, schema) (fastavro's own converter, so datetimes, UUIDs and
 * decimals come out exactly as fastavro writes them) unless the datum already has the wire type
 * named by `fast` (an exact int or str), which is the common case and stays in C.
 *
 * Output is byte-identical to fastavro.schemaless_writer for valid records (a property test
 * checks every schema). Invalid records raise TypeError (wrong type) or ValueError (missing field,
 * unknown enum symbol, out-of-range int, bad fixed size), with the path of the offending value.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define PLAN_VERSION 1
#define STACK_BUFFER 2048

enum Kind {
    K_NULL,
    K_BOOLEAN,
    K_INT,
    K_LONG,
    K_FLOAT,
    K_DOUBLE,
    K_BYTES,
    K_STRING,
    K_FIXED,
    K_ENUM,
    K_ARRAY,
    K_MAP,
    K_RECORD,
    K_UNION,
    K_LOGICAL,
};

static const char *KIND_NAMES[] = {
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
    "fixed", "enum", "array", "map", "record", "union", "logical",
};
#define N_KINDS ((int)(sizeof(KIND_NAMES) / sizeof(KIND_NAMES[0])))

enum Fast { F_NONE, F_INT, F_STR };

typedef struct Node Node;

typedef struct {
    PyObject *name;    /* interned str: dict lookups hit the identity fast path */
    Node *type;
    PyObject *missing; /* bytes written when the field is absent, or NULL: absence is an error */
} Field;

struct Node {
    int kind;
    Py_ssize_t count;  /* fixed: size; record: fields; union: branches */
    PyObject *name;    /* record / enum / fixed full name, for messages */
    PyObject *symbols; /* enum: dict symbol -> index */
    Node *child;       /* array items, map values, logical base */
    Node **branches;   /* union */
    Field *fields;     /* record */
    Py_ssize_t null_branch; /* union: index of "null", or -1 */
    PyObject *prepare; /* logical */
    PyObject *schema;  /* logical */
    int fast;          /* logical */
};

typedef struct {
    PyObject_HEAD
    Node *nodes;
    Py_ssize_t n_nodes;
    PyObject *prefix; /* bytes written before every body (the Confluent header) */
} EncoderObject;

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
    PyObject *path; /* segments gathered while an error unwinds (innermost first), or NULL */
    char stack[STACK_BUFFER];
} Buf;

/* ------------------------------------------------------------------ buffer */

static int
buf_grow(Buf *b, Py_ssize_t extra)
{
    Py_ssize_t need = b->len + extra;
    Py_ssize_t cap = b->cap * 2;
    while (cap < need) {
        cap *= 2;
    }
    char *data;
    if (b->data == b->stack) {
        data = PyMem_Malloc((size_t)cap);
        if (data != NULL) {
            memcpy(data, b->data, (size_t)b->len);
        }
    }
    else {
        data = PyMem_Realloc(b->data, (size_t)cap);
    }
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int
buf_reserve(Buf *b, Py_ssize_t extra)
{
    if (b->len + extra <= b->cap) {
        return 0;
    }
    return buf_grow(b, extra);
}

static inline int
put_bytes(Buf *b, const char *src, Py_ssize_t n)
{
    if (buf_reserve(b, n) < 0) {
        return -1;
    }
    memcpy(b->data + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}

static inline int
put_long(Buf *b, int64_t value)
{
    if (buf_reserve(b, 10) < 0) {
        return -1;
    }
    /* zigzag, then base-128 varint, as the Avro spec says */
    uint64_t n = ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
    unsigned char *p = (unsigned char *)b->data + b->len;
    while (n > 0x7F) {
        *p++ = (unsigned char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    *p++ = (unsigned char)n;
    b->len = (Py_ssize_t)((char *)p - b->data);
    return 0;
}

static inline int
put_le(Buf *b, const void *value, size_t n)
{
    if (buf_reserve(b, (Py_ssize_t)n) < 0) {
        return -1;
    }
#if PY_LITTLE_ENDIAN
    memcpy(b->data + b->len, value, n);
#else
    const unsigned char *src = value;
    for (size_t i = 0; i < n; i++) {
        b->data[b->len + (Py_ssize_t)i] = (char)src[n - 1 - i];
    }
#endif
    b->len += (Py_ssize_t)n;
    return 0;
}

/* ------------------------------------------------------------------ errors */

static int
type_error(const char *expected, PyObject *value)
{
    PyErr_Format(PyExc_TypeError, "expected %s, got %.100s", expected, Py_TYPE(value)->tp_name);
    return -1;
}

/* Remember where we are while an error unwinds; the top level turns this into "a.b[3].c". */
static int
unwind(Buf *b, PyObject *segment)
{
    if (b->path == NULL) {
        b->path = PyList_New(0);
        if (b->path == NULL) {
            return -1;
        }
    }
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb); /* appending must not clobber the real error */
    PyList_Append(b->path, segment);
    PyErr_Restore(exc_type, exc_value, exc_tb);
    return -1;
}

static int
unwind_index(Buf *b, Py_ssize_t index)
{
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *segment = PyLong_FromSsize_t(index);
    PyErr_Restore(exc_type, exc_value, exc_tb);
    if (segment != NULL) {
        unwind(b, segment);
        Py_DECREF(segment);
    }
    return -1;
}

/* Prefix the message with the path; TypeError stays TypeError, any other ValueError/OverflowError
 * (UnicodeEncodeError included) becomes a plain ValueError. Anything else (MemoryError, an
 * exception from a user's converter) passes through untouched. */
static void
raise_with_path(Buf *b)
{
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyErr_NormalizeException(&exc_type, &exc_value, &exc_tb);
    PyObject *target = NULL;
    if (PyErr_GivenExceptionMatches(exc_type, PyExc_TypeError)) {
        target = PyExc_TypeError;
    }
    else if (PyErr_GivenExceptionMatches(exc_type, PyExc_ValueError) ||
             PyErr_GivenExceptionMatches(exc_type, PyExc_OverflowError)) {
        target = PyExc_ValueError;
    }
    if (target == NULL || b->path == NULL) {
        PyErr_Restore(exc_type, exc_value, exc_tb);
        return;
    }
    PyObject *path = PyUnicode_FromString("");
    Py_ssize_t n = PyList_GET_SIZE(b->path);
    for (Py_ssize_t i = n - 1; i >= 0 && path != NULL; i--) {
        PyObject *seg = PyList_GET_ITEM(b->path, i);
        PyObject *next;
        if (PyLong_Check(seg)) {
            next = PyUnicode_FromFormat("%U[%S]", path, seg);
        }
        else if (PyUnicode_Check(seg) && PyUnicode_GET_LENGTH(path) == 0) {
            next = PyUnicode_FromFormat("%U", seg);
        }
        else if (PyUnicode_Check(seg)) {
            next = PyUnicode_FromFormat("%U.%U", path, seg);
        }
        else { /* a map key, wrapped in a 1-tuple */
            next = PyUnicode_FromFormat("%U[%R]", path, PyTuple_GET_ITEM(seg, 0));
        }
        Py_DECREF(path);
        path = next;
    }
    if (path == NULL) {
        Py_XDECREF(exc_type);
        Py_XDECREF(exc_value);
        Py_XDECREF(exc_tb);
        return;
    }
    PyObject *message = PyObject_Str(exc_value);
    if (message == NULL) {
        Py_DECREF(path);
        Py_XDECREF(exc_type);
        Py_XDECREF(exc_value);
        Py_XDECREF(exc_tb);
        return;
    }
    PyErr_Format(target, "%U: %U", path, message);
    Py_DECREF(path);
    Py_DECREF(message);
    PyObject *t2, *v2, *tb2;
    PyErr_Fetch(&t2, &v2, &tb2);
    PyErr_NormalizeException(&t2, &v2, &tb2);
    if (v2 != NULL && exc_value != NULL) {
        PyException_SetCause(v2, exc_value); /* steals exc_value */
        exc_value = NULL;
    }
    PyErr_Restore(t2, v2, tb2);
    Py_XDECREF(exc_type);
    Py_XDECREF(exc_value);
    Py_XDECREF(exc_tb);
}

/* ------------------------------------------------------------------ values */

static int
as_integer(PyObject *value, int kind, int64_t *out)
{
    /* bool is an int subclass, but True in an int field is almost always a bug */
    if (PyBool_Check(value)) {
        return type_error(KIND_NAMES[kind], value);
    }
    PyObject *number;
    if (PyLong_Check(value)) {
        number = Py_NewRef(value);
    }
    else if (PyIndex_Check(value) && !PyFloat_Check(value)) { /* numpy integers and the like */
        number = PyNumber_Index(value);
        if (number == NULL) {
            return -1;
        }
    }
    else {
        return type_error(KIND_NAMES[kind], value);
    }
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(number, &overflow);
    if (x == -1 && PyErr_Occurred()) {
        Py_DECREF(number);
        return -1;
    }
    if (overflow || (kind == K_INT && (x < INT32_MIN || x > INT32_MAX))) {
        PyErr_Format(PyExc_ValueError, "%R is out of range for Avro %s", number, KIND_NAMES[kind]);
        Py_DECREF(number);
        return -1;
    }
    Py_DECREF(number);
    *out = (int64_t)x;
    return 0;
}

static int
as_real(PyObject *value, int kind, double *out)
{
    if (PyFloat_CheckExact(value)) {
        *out = PyFloat_AS_DOUBLE(value);
        return 0;
    }
    if (PyBool_Check(value) || !(PyFloat_Check(value) || PyLong_Check(value))) {
        return type_error(KIND_NAMES[kind], value);
    }
    double x = PyLong_Check(value) ? PyLong_AsDouble(value) : PyFloat_AsDouble(value);
    if (x == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    *out = x;
    return 0;
}

static int encode_value(Buf *b, Node *node, PyObject *value);
static int matches(Node *node, PyObject *value);

static int
encode_string(Buf *b, PyObject *value)
{
    if (!PyUnicode_Check(value)) {
        return type_error("string", value);
    }
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(value, &size); /* cached on the str object */
    if (utf8 == NULL) {
        return -1;
    }
    if (put_long(b, size) < 0) {
        return -1;
    }
    return put_bytes(b, utf8, size);
}

static int
encode_record(Buf *b, Node *node, PyObject *value)
{
    int is_dict = PyDict_Check(value);
    if (!is_dict && (!PyMapping_Check(value) || PyUnicode_Check(value) || PyList_Check(value) ||
                     PyTuple_Check(value) || PyBytes_Check(value))) {
        PyErr_Format(PyExc_TypeError, "expected a mapping for record %U, got %.100s", node->name,
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    for (Py_ssize_t i = 0; i < node->count; i++) {
        Field *field = &node->fields[i];
        PyObject *item;
        if (is_dict) {
            item = PyDict_GetItemWithError(value, field->name);
            if (item == NULL && PyErr_Occurred()) {
                return -1;
            }
            Py_XINCREF(item); /* a converter may mutate the dict; keep the value alive */
        }
        else {
            item = PyObject_GetItem(value, field->name);
            if (item == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                    return -1;
                }
                PyErr_Clear();
            }
        }
        if (item == NULL) {
            if (field->missing == NULL) {
                /* no unwind(): the path names the record, the message names the field */
                PyErr_Format(PyExc_ValueError, "missing field %R of record %U (it has no default)",
                             field->name, node->name);
                return -1;
            }
            if (put_bytes(b, PyBytes_AS_STRING(field->missing), PyBytes_GET_SIZE(field->missing)) < 0) {
                return -1;
            }
            continue;
        }
        int rc = encode_value(b, field->type, item);
        Py_DECREF(item);
        if (rc < 0) {
            return unwind(b, field->name);
        }
    }
    return 0;
}

static int
encode_array(Buf *b, Node *node, PyObject *value)
{
    if (PyUnicode_Check(value) || PyDict_Check(value)) {
        return type_error("array (a list)", value);
    }
    PyObject *seq = PySequence_Fast(value, "");
    if (seq == NULL) {
        PyErr_Clear();
        return type_error("array (a list)", value);
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > 0 && put_long(b, n) < 0) {
        Py_DECREF(seq);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= PySequence_Fast_GET_SIZE(seq)) { /* shrunk by a converter */
            PyErr_SetString(PyExc_ValueError, "array changed size while being encoded");
            Py_DECREF(seq);
            return -1;
        }
        PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(seq, i));
        int rc = encode_value(b, node->child, item);
        Py_DECREF(item);
        if (rc < 0) {
            Py_DECREF(seq);
            return unwind_index(b, i);
        }
    }
    Py_DECREF(seq);
    return put_long(b, 0);
}

static int
encode_map_entry(Buf *b, Node *node, PyObject *key, PyObject *item)
{
    if (!PyUnicode_Check(key)) {
        PyErr_Format(PyExc_TypeError, "map keys must be str, got %.100s", Py_TYPE(key)->tp_name);
        return -1;
    }
    if (encode_string(b, key) < 0) {
        return -1;
    }
    if (encode_value(b, node->child, item) < 0) {
        PyObject *segment = PyTuple_Pack(1, key);
        if (segment != NULL) {
            unwind(b, segment);
            Py_DECREF(segment);
        }
        return -1;
    }
    return 0;
}

static int
encode_map(Buf *b, Node *node, PyObject *value)
{
    if (PyDict_Check(value)) {
        Py_ssize_t n = PyDict_GET_SIZE(value);
        if (n > 0 && put_long(b, n) < 0) {
            return -1;
        }
        Py_ssize_t pos = 0, seen = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            Py_INCREF(key);
            Py_INCREF(item);
            int rc = encode_map_entry(b, node, key, item);
            Py_DECREF(key);
            Py_DECREF(item);
            if (rc < 0) {
                return -1;
            }
            seen++;
        }
        if (seen != n) {
            PyErr_SetString(PyExc_ValueError, "map changed size while being encoded");
            return -1;
        }
        return put_long(b, 0);
    }
    if (!PyMapping_Check(value) || PyUnicode_Check(value) || PyList_Check(value) || PyTuple_Check(value)) {
        return type_error("map (a dict)", value);
    }
    PyObject *items = PyMapping_Items(value);
    if (items == NULL) {
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(items);
    int rc = (n > 0) ? put_long(b, n) : 0;
    for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "mapping items() must be (key, value) pairs");
            rc = -1;
            break;
        }
        rc = encode_map_entry(b, node, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
    }
    Py_DECREF(items);
    return rc < 0 ? -1 : put_long(b, 0);
}

static inline int
base_kind(Node *node)
{
    return node->kind == K_LOGICAL ? node->child->kind : node->kind;
}

/* How many of the record's field names are keys of value (fastavro's tie-break between records). */
static Py_ssize_t
shared_fields(Node *record, PyObject *value)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < record->count; i++) {
        int has = PySequence_Contains(value, record->fields[i].name);
        if (has < 0) {
            return -1;
        }
        count += has;
    }
    return count;
}

/* The branch fastavro's write_union would pick: the first that validates, except that a record
 * keeps looking for one sharing more fields and "float" gives way to a later "double". */
static Py_ssize_t
pick_branch(Node *node, PyObject *value)
{
    if (node->null_branch >= 0) {
        if (value == Py_None) {
            return node->null_branch;
        }
        if (node->count == 2) {
            /* ["null", T]: nothing but "null" accepts None, so T it is; encoding T validates it */
            Py_ssize_t other = 1 - node->null_branch;
            int kind = base_kind(node->branches[other]);
            if (kind != K_RECORD && kind != K_FLOAT) {
                return other;
            }
        }
    }
    Py_ssize_t best = -1, most = -1;
    int could_be_float = 0;
    for (Py_ssize_t i = 0; i < node->count; i++) {
        Node *branch = node->branches[i];
        int kind = base_kind(branch);
        if (could_be_float) {
            if (kind == K_DOUBLE) {
                return i;
            }
            continue;
        }
        int ok = matches(branch, value);
        if (ok < 0) {
            return -2;
        }
        if (!ok) {
            continue;
        }
        if (kind == K_RECORD) {
            Node *record = branch->kind == K_LOGICAL ? branch->child : branch;
            Py_ssize_t shared = shared_fields(record, value);
            if (shared < 0) {
                return -2;
            }
            if (shared > most) {
                best = i;
                most = shared;
            }
        }
        else if (kind == K_FLOAT) {
            best = i;
            could_be_float = 1;
        }
        else {
            return i;
        }
    }
    return best;
}

static int
encode_union(Buf *b, Node *node, PyObject *value)
{
    Py_ssize_t index = pick_branch(node, value);
    if (index == -2) {
        return -1;
    }
    if (index < 0) {
        PyObject *names = PyList_New(0);
        if (names == NULL) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < node->count; i++) {
            Node *branch = node->branches[i];
            PyObject *name = branch->name != NULL ? Py_NewRef(branch->name)
                                                  : PyUnicode_FromString(KIND_NAMES[base_kind(branch)]);
            if (name == NULL || PyList_Append(names, name) < 0) {
                Py_XDECREF(name);
                Py_DECREF(names);
                return -1;
            }
            Py_DECREF(name);
        }
        PyErr_Format(PyExc_TypeError, "a %.100s matches no branch of the union %R", Py_TYPE(value)->tp_name,
                     names);
        Py_DECREF(names);
        return -1;
    }
    if (put_long(b, index) < 0) {
        return -1;
    }
    return encode_value(b, node->branches[index], value);
}

static int
encode_logical(Buf *b, Node *node, PyObject *value)
{
    if ((node->fast == F_INT && PyLong_CheckExact(value)) ||
        (node->fast == F_STR && PyUnicode_CheckExact(value))) {
        return encode_value(b, node->child, value);
    }
    PyObject *wire = PyObject_CallFunctionObjArgs(node->prepare, value, node->schema, NULL);
    if (wire == NULL) {
        return -1;
    }
    int rc = encode_value(b, node->child, wire);
    Py_DECREF(wire);
    return rc;
}

static int
encode_value(Buf *b, Node *node, PyObject *value)
{
    switch (node->kind) {
    case K_NULL:
        return value == Py_None ? 0 : type_error("null (None)", value);
    case K_BOOLEAN: {
        if (!PyBool_Check(value)) {
            return type_error("boolean", value);
        }
        char byte = value == Py_True ? 1 : 0;
        return put_bytes(b, &byte, 1);
    }
    case K_INT:
    case K_LONG: {
        if (PyLong_CheckExact(value)) { /* the hot path: no overflow, no bool */
            int overflow = 0;
            long long x = PyLong_AsLongLongAndOverflow(value, &overflow);
            if (!overflow && (node->kind == K_LONG || (x >= INT32_MIN && x <= INT32_MAX))) {
                return put_long(b, (int64_t)x);
            }
        }
        int64_t x;
        if (as_integer(value, node->kind, &x) < 0) {
            return -1;
        }
        return put_long(b, x);
    }
    case K_FLOAT: {
        double x;
        if (as_real(value, K_FLOAT, &x) < 0) {
            return -1;
        }
        /* fastavro narrows like C does: out-of-range values become +-inf rather than an error */
        float f = (isfinite(x) && fabs(x) > FLT_MAX) ? (float)copysign(INFINITY, x) : (float)x;
        return put_le(b, &f, sizeof f);
    }
    case K_DOUBLE: {
        double x;
        if (as_real(value, K_DOUBLE, &x) < 0) {
            return -1;
        }
        return put_le(b, &x, sizeof x);
    }
    case K_STRING:
        return encode_string(b, value);
    case K_BYTES: {
        if (PyBytes_Check(value)) {
            Py_ssize_t n = PyBytes_GET_SIZE(value);
            return put_long(b, n) < 0 ? -1 : put_bytes(b, PyBytes_AS_STRING(value), n);
        }
        if (PyByteArray_Check(value)) {
            Py_ssize_t n = PyByteArray_GET_SIZE(value);
            return put_long(b, n) < 0 ? -1 : put_bytes(b, PyByteArray_AS_STRING(value), n);
        }
        return type_error("bytes", value);
    }
    case K_FIXED: {
        const char *data;
        Py_ssize_t n;
        if (PyBytes_Check(value)) {
            data = PyBytes_AS_STRING(value);
            n = PyBytes_GET_SIZE(value);
        }
        else if (PyByteArray_Check(value)) {
            data = PyByteArray_AS_STRING(value);
            n = PyByteArray_GET_SIZE(value);
        }
        else {
            return type_error("bytes (fixed)", value);
        }
        if (n != node->count) {
            PyErr_Format(PyExc_ValueError, "fixed %U takes exactly %zd bytes, got %zd", node->name, node->count,
                         n);
            return -1;
        }
        return put_bytes(b, data, n);
    }
    case K_ENUM: {
        if (!PyUnicode_Check(value)) {
            return type_error("enum symbol (a str)", value);
        }
        PyObject *index = PyDict_GetItemWithError(node->symbols, value);
        if (index == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_ValueError, "%R is not a symbol of enum %U", value, node->name);
            }
            return -1;
        }
        return put_long(b, PyLong_AsLongLong(index));
    }
    case K_ARRAY:
    case K_MAP:
    case K_RECORD: {
        if (Py_EnterRecursiveCall(" while encoding Avro")) {
            return -1;
        }
        int rc = node->kind == K_RECORD  ? encode_record(b, node, value)
                 : node->kind == K_ARRAY ? encode_array(b, node, value)
                                         : encode_map(b, node, value);
        Py_LeaveRecursiveCall();
        return rc;
    }
    case K_UNION:
        return encode_union(b, node, value);
    case K_LOGICAL:
        return encode_logical(b, node, value);
    default:
        PyErr_Format(PyExc_SystemError, "corrupt plan node kind %d", node->kind);
        return -1;
    }
}

/* ------------------------------------------------------------------ union validation */

/* fastavro's _validate (its compiled version), which decides union branches: 1 matches, 0 does
 * not, -1 error. Lists, tuples and dicts are checked directly; other containers by the abcs. */
static PyObject *SEQUENCE_ABC, *MAPPING_ABC, *ARRAY_TYPE, *TYPE_KEY;

static int
is_sequence(PyObject *value)
{
    if (PyList_Check(value) || PyTuple_Check(value)) {
        return 1;
    }
    if (PyUnicode_Check(value) || PyDict_Check(value)) {
        return 0;
    }
    int ok = PyObject_IsInstance(value, SEQUENCE_ABC);
    return ok != 0 ? ok : PyObject_IsInstance(value, ARRAY_TYPE);
}

static int
is_mapping(PyObject *value)
{
    return PyDict_Check(value) ? 1 : PyObject_IsInstance(value, MAPPING_ABC);
}

/* value[key] as a new reference; NULL with no error set when absent */
static PyObject *
lookup(PyObject *value, PyObject *key)
{
    if (PyDict_Check(value)) {
        PyObject *item = PyDict_GetItemWithError(value, key);
        Py_XINCREF(item);
        return item;
    }
    PyObject *item = PyObject_GetItem(value, key);
    if (item == NULL && PyErr_ExceptionMatches(PyExc_KeyError)) {
        PyErr_Clear();
    }
    return item;
}

static int
matches_container(Node *node, PyObject *value)
{
    if (node->kind == K_ARRAY) {
        int ok = is_sequence(value);
        if (ok <= 0) {
            return ok;
        }
        PyObject *seq = PySequence_Fast(value, "");
        if (seq == NULL) {
            return -1;
        }
        for (Py_ssize_t i = 0; ok == 1 && i < PySequence_Fast_GET_SIZE(seq); i++) {
            PyObject *item = Py_NewRef(PySequence_Fast_GET_ITEM(seq, i));
            ok = matches(node->child, item);
            Py_DECREF(item);
        }
        Py_DECREF(seq);
        return ok;
    }
    int ok = is_mapping(value);
    if (ok <= 0) {
        return ok;
    }
    if (node->kind == K_MAP) {
        PyObject *items = PyMapping_Items(value);
        if (items == NULL) {
            return -1;
        }
        for (Py_ssize_t i = 0; ok == 1 && i < PyList_GET_SIZE(items); i++) {
            PyObject *pair = PyList_GET_ITEM(items, i);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                ok = 0;
                break;
            }
            ok = PyUnicode_Check(PyTuple_GET_ITEM(pair, 0)) ? matches(node->child, PyTuple_GET_ITEM(pair, 1)) : 0;
        }
        Py_DECREF(items);
        return ok;
    }
    /* record: a "-type" key naming another record rules it out, as in fastavro */
    PyObject *named = lookup(value, TYPE_KEY);
    if (named != NULL) {
        int same = PyObject_RichCompareBool(named, node->name, Py_EQ);
        Py_DECREF(named);
        if (same <= 0) {
            return same;
        }
    }
    else if (PyErr_Occurred()) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < node->count; i++) {
        Field *field = &node->fields[i];
        PyObject *item = lookup(value, field->name);
        if (item == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
            if (field->missing == NULL) {
                return 0;
            }
            continue;
        }
        ok = matches(field->type, item);
        Py_DECREF(item);
        if (ok <= 0) {
            return ok;
        }
    }
    return 1;
}

static int
matches(Node *node, PyObject *value)
{
    switch (node->kind) {
    case K_NULL:
        return value == Py_None;
    case K_BOOLEAN:
        return PyBool_Check(value);
    case K_INT:
    case K_LONG: {
        if (!PyLong_Check(value) || PyBool_Check(value)) {
            return 0;
        }
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (x == -1 && PyErr_Occurred()) {
            return -1;
        }
        return !overflow && (node->kind == K_LONG || (x >= INT32_MIN && x <= INT32_MAX));
    }
    case K_FLOAT:
    case K_DOUBLE:
        return PyFloat_Check(value) || (PyLong_Check(value) && !PyBool_Check(value));
    case K_STRING:
        return PyUnicode_Check(value);
    case K_BYTES:
        return PyBytes_Check(value) || PyByteArray_Check(value);
    case K_FIXED:
        return (PyBytes_Check(value) && PyBytes_GET_SIZE(value) == node->count) ||
               (PyByteArray_Check(value) && PyByteArray_GET_SIZE(value) == node->count);
    case K_ENUM: {
        if (!PyUnicode_Check(value)) {
            return 0;
        }
        PyObject *index = PyDict_GetItemWithError(node->symbols, value);
        return index != NULL ? 1 : (PyErr_Occurred() ? -1 : 0);
    }
    case K_ARRAY:
    case K_MAP:
    case K_RECORD: {
        if (Py_EnterRecursiveCall(" while matching an Avro union")) {
            return -1;
        }
        int ok = matches_container(node, value);
        Py_LeaveRecursiveCall();
        return ok;
    }
    case K_UNION:
        for (Py_ssize_t i = 0; i < node->count; i++) {
            int ok = matches(node->branches[i], value);
            if (ok != 0) {
                return ok;
            }
        }
        return 0;
    case K_LOGICAL: {
        if ((node->fast == F_INT && PyLong_CheckExact(value)) ||
            (node->fast == F_STR && PyUnicode_CheckExact(value))) {
            return matches(node->child, value);
        }
        PyObject *wire = PyObject_CallFunctionObjArgs(node->prepare, value, node->schema, NULL);
        if (wire == NULL) {
            return -1;
        }
        int ok = matches(node->child, wire);
        Py_DECREF(wire);
        return ok;
    }
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ plan */

static void
free_nodes(Node *nodes, Py_ssize_t n)
{
    if (nodes == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Node *node = &nodes[i];
        Py_XDECREF(node->name);
        Py_XDECREF(node->symbols);
        Py_XDECREF(node->prepare);
        Py_XDECREF(node->schema);
        if (node->fields != NULL) {
            for (Py_ssize_t f = 0; f < node->count; f++) {
                Py_XDECREF(node->fields[f].name);
                Py_XDECREF(node->fields[f].missing);
            }
            PyMem_Free(node->fields);
        }
        PyMem_Free(node->branches);
    }
    PyMem_Free(nodes);
}

static int
plan_error(Py_ssize_t index, const char *what)
{
    PyErr_Format(PyExc_ValueError, "invalid encoding plan at node %zd: %s", index, what);
    return -1;
}

static Node *
node_ref(Node *nodes, Py_ssize_t n, PyObject *obj, Py_ssize_t at)
{
    Py_ssize_t index = PyLong_Check(obj) ? PyLong_AsSsize_t(obj) : -1;
    if (index < 0 || index >= n) {
        PyErr_Clear();
        plan_error(at, "child index out of range");
        return NULL;
    }
    return &nodes[index];
}

static int
build_node(Node *nodes, Py_ssize_t n, Py_ssize_t at, PyObject *spec)
{
    Node *node = &nodes[at];
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1 || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 0))) {
        return plan_error(at, "expected a tuple starting with a kind name");
    }
    const char *kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0));
    if (kind == NULL) {
        return -1;
    }
    node->kind = -1;
    for (int k = 0; k < N_KINDS; k++) {
        if (strcmp(kind, KIND_NAMES[k]) == 0) {
            node->kind = k;
        }
    }
    node->null_branch = -1;
    Py_ssize_t size = PyTuple_GET_SIZE(spec);
    switch (node->kind) {
    case K_NULL:
    case K_BOOLEAN:
    case K_INT:
    case K_LONG:
    case K_FLOAT:
    case K_DOUBLE:
    case K_BYTES:
    case K_STRING:
        return 0;
    case K_FIXED:
    case K_ENUM:
        if (size != 3 || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 1))) {
            return plan_error(at, "fixed/enum take (kind, name, size or symbols)");
        }
        node->name = Py_NewRef(PyTuple_GET_ITEM(spec, 1));
        if (node->kind == K_FIXED) {
            node->count = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 2));
            if (node->count < 0) {
                PyErr_Clear();
                return plan_error(at, "fixed size must be a non-negative int");
            }
            return 0;
        }
        else {
            PyObject *symbols = PyTuple_GET_ITEM(spec, 2);
            if (!PyTuple_Check(symbols)) {
                return plan_error(at, "enum symbols must be a tuple");
            }
            node->symbols = PyDict_New();
            if (node->symbols == NULL) {
                return -1;
            }
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(symbols); i++) {
                PyObject *index = PyLong_FromSsize_t(i);
                PyObject *symbol = PyTuple_GET_ITEM(symbols, i);
                int rc = (index == NULL || !PyUnicode_Check(symbol)) ? -1
                                                                     : PyDict_SetItem(node->symbols, symbol, index);
                Py_XDECREF(index);
                if (rc < 0) {
                    return PyErr_Occurred() ? -1 : plan_error(at, "enum symbols must be str");
                }
            }
            return 0;
        }
    case K_ARRAY:
    case K_MAP:
        if (size != 2) {
            return plan_error(at, "array/map take (kind, child)");
        }
        node->child = node_ref(nodes, n, PyTuple_GET_ITEM(spec, 1), at);
        return node->child == NULL ? -1 : 0;
    case K_RECORD: {
        PyObject *fields = size == 3 ? PyTuple_GET_ITEM(spec, 2) : NULL;
        if (fields == NULL || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 1)) || !PyTuple_Check(fields)) {
            return plan_error(at, "record takes (kind, name, fields)");
        }
        node->name = Py_NewRef(PyTuple_GET_ITEM(spec, 1));
        Py_ssize_t count = PyTuple_GET_SIZE(fields);
        node->fields = PyMem_Calloc((size_t)(count ? count : 1), sizeof(Field));
        if (node->fields == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        node->count = count;
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *field = PyTuple_GET_ITEM(fields, i);
            if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 3 ||
                !PyUnicode_CheckExact(PyTuple_GET_ITEM(field, 0))) {
                return plan_error(at, "a field is (name, type, missing bytes or None)");
            }
            PyObject *name = Py_NewRef(PyTuple_GET_ITEM(field, 0));
            PyUnicode_InternInPlace(&name);
            node->fields[i].name = name;
            node->fields[i].type = node_ref(nodes, n, PyTuple_GET_ITEM(field, 1), at);
            if (node->fields[i].type == NULL) {
                return -1;
            }
            PyObject *missing = PyTuple_GET_ITEM(field, 2);
            if (missing != Py_None) {
                if (!PyBytes_Check(missing)) {
                    return plan_error(at, "a field's missing value must be bytes or None");
                }
                node->fields[i].missing = Py_NewRef(missing);
            }
        }
        return 0;
    }
    case K_UNION: {
        PyObject *branches = size == 2 ? PyTuple_GET_ITEM(spec, 1) : NULL;
        if (branches == NULL || !PyTuple_Check(branches) || PyTuple_GET_SIZE(branches) == 0) {
            return plan_error(at, "union takes (kind, (branch, ...))");
        }
        Py_ssize_t count = PyTuple_GET_SIZE(branches);
        node->branches = PyMem_Calloc((size_t)count, sizeof(Node *));
        if (node->branches == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        node->count = count;
        for (Py_ssize_t i = 0; i < count; i++) {
            node->branches[i] = node_ref(nodes, n, PyTuple_GET_ITEM(branches, i), at);
            if (node->branches[i] == NULL) {
                return -1;
            }
        }
        return 0;
    }
    case K_LOGICAL: {
        if (size != 5 || !PyCallable_Check(PyTuple_GET_ITEM(spec, 2)) || !PyUnicode_Check(PyTuple_GET_ITEM(spec, 4))) {
            return plan_error(at, "logical takes (kind, base, prepare, schema, fast)");
        }
        node->child = node_ref(nodes, n, PyTuple_GET_ITEM(spec, 1), at);
        if (node->child == NULL) {
            return -1;
        }
        node->prepare = Py_NewRef(PyTuple_GET_ITEM(spec, 2));
        node->schema = Py_NewRef(PyTuple_GET_ITEM(spec, 3));
        const char *fast = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 4));
        if (fast == NULL) {
            return -1;
        }
        node->fast = strcmp(fast, "int") == 0 ? F_INT : strcmp(fast, "str") == 0 ? F_STR : F_NONE;
        return 0;
    }
    default:
        return plan_error(at, "unknown kind");
    }
}

/* Checks that need every node built: unions hold no unions and logical types wrap plain types, so
 * every cycle in a plan passes through an array, map or record, which consume one level of the
 * input and are guarded by Py_EnterRecursiveCall. */
static int
check_nodes(Node *nodes, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        Node *node = &nodes[i];
        if (node->kind == K_UNION) {
            for (Py_ssize_t b = 0; b < node->count; b++) {
                int kind = node->branches[b]->kind;
                if (kind == K_UNION) {
                    return plan_error(i, "a union cannot hold a union");
                }
                if (base_kind(node->branches[b]) == K_NULL && node->null_branch < 0) {
                    node->null_branch = b;
                }
            }
        }
        if (node->kind == K_LOGICAL && (node->child->kind == K_LOGICAL || node->child->kind == K_UNION)) {
            return plan_error(i, "a logical type wraps a plain type");
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ Encoder type */

static void
Encoder_dealloc(EncoderObject *self)
{
    free_nodes(self->nodes, self->n_nodes);
    Py_XDECREF(self->prefix);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Encoder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"plan", "prefix", NULL};
    PyObject *plan;
    PyObject *prefix = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|S:Encoder", keywords, &plan, &prefix)) {
        return NULL;
    }
    PyObject *seq = PySequence_Fast(plan, "plan must be a sequence of node tuples");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "plan is empty");
        return NULL;
    }
    EncoderObject *self = (EncoderObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(seq);
        return NULL;
    }
    self->nodes = PyMem_Calloc((size_t)n, sizeof(Node));
    if (self->nodes == NULL) {
        Py_DECREF(seq);
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->n_nodes = n;
    self->prefix = prefix != NULL ? Py_NewRef(prefix) : PyBytes_FromStringAndSize("", 0);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (build_node(self->nodes, n, i, PySequence_Fast_GET_ITEM(seq, i)) < 0) {
            Py_DECREF(seq);
            Py_DECREF(self);
            return NULL;
        }
    }
    Py_DECREF(seq);
    if (self->prefix == NULL || check_nodes(self->nodes, n) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyObject *
Encoder_encode(EncoderObject *self, PyObject *record)
{
    Buf b;
    b.data = b.stack;
    b.len = 0;
    b.cap = STACK_BUFFER;
    b.path = NULL;
    PyObject *out = NULL;
    if (put_bytes(&b, PyBytes_AS_STRING(self->prefix), PyBytes_GET_SIZE(self->prefix)) == 0) {
        if (encode_value(&b, &self->nodes[0], record) == 0) {
            out = PyBytes_FromStringAndSize(b.data, b.len);
        }
        else {
            raise_with_path(&b);
        }
    }
    if (b.data != b.stack) {
        PyMem_Free(b.data);
    }
    Py_XDECREF(b.path);
    return out;
}

static PyObject *
Encoder_get_prefix(EncoderObject *self, void *closure)
{
    return Py_NewRef(self->prefix);
}

static PyMethodDef Encoder_methods[] = {
    {"encode", (PyCFunction)Encoder_encode, METH_O,
     "encode(record) -> bytes\n--\n\nThe prefix followed by the Avro binary encoding of record."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Encoder_getset[] = {
    {"prefix", (getter)Encoder_get_prefix, NULL, "bytes written before every record", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "twin._avroenc.Encoder",
    .tp_basicsize = sizeof(EncoderObject),
    .tp_dealloc = (destructor)Encoder_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Encoder(plan, prefix=b'')\n--\n\nAn Avro schema compiled into a plan (see twin.codec), ready to "
              "encode dicts.",
    .tp_methods = Encoder_methods,
    .tp_getset = Encoder_getset,
    .tp_new = Encoder_new,
};

static struct PyModuleDef avroenc_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "twin._avroenc",
    .m_doc = "Schema-compiled Avro binary encoding (byte-identical to fastavro.schemaless_writer).",
    .m_size = -1,
};

static PyObject *
attribute_of(const char *module_name, const char *name)
{
    PyObject *module = PyImport_ImportModule(module_name);
    if (module == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_GetAttrString(module, name);
    Py_DECREF(module);
    return value;
}

PyMODINIT_FUNC
PyInit__avroenc(void)
{
    if (PyType_Ready(&EncoderType) < 0) {
        return NULL;
    }
    if (SEQUENCE_ABC == NULL) { /* kept for the life of the process, like the module */
        SEQUENCE_ABC = attribute_of("collections.abc", "Sequence");
        MAPPING_ABC = attribute_of("collections.abc", "Mapping");
        ARRAY_TYPE = attribute_of("array", "array");
        TYPE_KEY = PyUnicode_InternFromString("-type");
        if (SEQUENCE_ABC == NULL || MAPPING_ABC == NULL || ARRAY_TYPE == NULL || TYPE_KEY == NULL) {
            Py_CLEAR(SEQUENCE_ABC);
            Py_CLEAR(MAPPING_ABC);
            Py_CLEAR(ARRAY_TYPE);
            Py_CLEAR(TYPE_KEY);
            return NULL;
        }
    }
    PyObject *module = PyModule_Create(&avroenc_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "PLAN_VERSION", PLAN_VERSION) < 0 ||
        PyModule_AddObjectRef(module, "Encoder", (PyObject *)&EncoderType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
