// The Ratchet SDK: durable functions and distributed coroutines for C++.
// See dispatch.hpp to start.
#pragma once

#include "ratchet/call.hpp"
#include "ratchet/call_options.hpp"
#include "ratchet/dispatch.hpp"
#include "ratchet/errors.hpp"
#include "ratchet/function.hpp"
#include "ratchet/steps.hpp"
#include "ratchet/task.hpp"
