#ifndef WEFT_CMOSQUITTO_SHIM_H
#define WEFT_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#endif
