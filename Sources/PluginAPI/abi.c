#include "northstar_plugin.h"
