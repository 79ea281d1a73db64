// placeholder: filled by the binary op family
#pragma once
