/* Fixed-width integer types for the freestanding guest (no libc headers). */
#ifndef OPML_TYPES_H
#define OPML_TYPES_H

typedef unsigned char uint8_t;
typedef signed char int8_t;
typedef unsigned short uint16_t;
typedef short int16_t;
typedef unsigned int uint32_t;
typedef int int32_t;
typedef unsigned long long uint64_t;
typedef long long int64_t;
typedef unsigned int size_t;
typedef unsigned int uintptr_t;

#define NULL ((void *)0)

#endif
