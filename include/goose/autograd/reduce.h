// placeholder: filled by the reduce op family
#pragma once
