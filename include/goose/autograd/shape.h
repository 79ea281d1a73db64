// placeholder: filled by the shape op family
#pragma once
