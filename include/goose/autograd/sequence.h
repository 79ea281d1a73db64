// placeholder: filled by the sequence op family
#pragma once
