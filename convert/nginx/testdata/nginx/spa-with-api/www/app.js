console.log('spa');
