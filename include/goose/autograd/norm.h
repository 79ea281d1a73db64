// placeholder: filled by the norm op family
#pragma once
